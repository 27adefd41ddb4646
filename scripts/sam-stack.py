#!/usr/bin/env python3
"""Turn deploy/sam/template.yaml into the CloudFormation that SAM deploys, offline, for the deploy tests.

Usage: sam-stack.py TEMPLATE OUTDIR STAGE [Name=Value ...]

Writes OUTDIR/cloudformation-template-update-stack.json (the template after the AWS::Serverless transform,
run by aws-sam-translator, the library cfn-lint and the SAM CLI use) and OUTDIR/serverless-state.json (the
stage and its parameter values, in the shape the deploy tests read for the Serverless stacks). Like
`sam package`, it points each CodeUri at an S3 object named after the zip; AWS::LanguageExtensions' Ref in
DeletionPolicy is resolved with the stage's parameter values, as CloudFormation does.
"""
import json
import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no managed policy: nothing to look up in IAM."""

    def load(self):
        return {}


def main():
    # The translator asks for a region to fill pseudo parameters in; none is reached over the network.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    path, out, stage, pairs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    with open(path) as f:
        tpl = yaml_parse(f.read())
    params = {name: str(p.get("Default", "")) for name, p in tpl.get("Parameters", {}).items()}
    params["Stage"] = stage
    for pair in pairs:
        k, v = pair.split("=", 1)
        params[k] = v
    resolved = set()
    for name, r in tpl["Resources"].items():
        for attr in ("DeletionPolicy", "UpdateReplacePolicy"):
            v = r.get(attr)
            if isinstance(v, dict) and "Ref" in v:
                r[attr] = params[v["Ref"]]
                resolved.add(v["Ref"])
        uri = r.get("Properties", {}).get("CodeUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            r["Properties"]["CodeUri"] = "s3://pretoken-sam-artifacts/" + os.path.basename(os.path.dirname(uri)) + "/" + os.path.basename(uri)
    tpl["Transform"] = "AWS::Serverless-2016-10-31"
    try:
        cfn = transform(tpl, params, NoManagedPolicies())
    except InvalidDocumentException as e:
        sys.exit("; ".join(str(c) for c in e.causes))
    # A parameter that only chose a DeletionPolicy is spent once the policy is resolved (as a Serverless stage
    # parameter is at package time); left in, cfn-lint warns that nothing uses it.
    text = json.dumps(cfn["Resources"]) + json.dumps(cfn.get("Outputs", {})) + json.dumps(cfn.get("Conditions", {}))
    for name in resolved:
        if '{"Ref": "%s"}' % name not in text and "${%s}" % name not in text:
            del cfn["Parameters"][name]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "cloudformation-template-update-stack.json"), "w") as f:
        json.dump(cfn, f, indent=2)
    state = {"service": {"provider": {"stage": stage, "stackParameters": [
        {"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())]}}}
    with open(os.path.join(out, "serverless-state.json"), "w") as f:
        json.dump(state, f, indent=2)


if __name__ == "__main__":
    main()
