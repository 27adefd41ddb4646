package deploy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSAMMatchesServerless: the SAM template (deploy/sam/template.yaml,
// after its transform) has serverless.yml's resources under the same logical
// ids and types, its parameters with the same allowed values and defaults,
// and its outputs, so a change to one that the other lacks fails here. The
// other tests hold both to the same checks.
func TestSAMMatchesServerless(t *testing.T) {
	byName := map[string]stack{}
	for _, s := range stacks(t) {
		byName[s.name] = s
	}
	if _, ok := byName["sam-demo"]; !ok {
		// make package-all transforms the SAM template only where aws-sam-translator (cfn-lint's) is installed.
		t.Skip("no transformed SAM stacks: aws-sam-translator is not installed here")
	}
	for _, stage := range []string{"demo", "prod"} {
		t.Run(stage, func(t *testing.T) {
			sls, ok1 := byName["osls-"+stage]
			sam, ok2 := byName["sam-"+stage]
			if !ok1 || !ok2 {
				t.Fatalf("want osls-%s and sam-%s among the packaged stacks", stage, stage)
			}
			types := func(s stack) map[string]string {
				out := map[string]string{}
				for name, r := range s.tpl.Resources {
					if !strings.HasPrefix(name, "ServerlessDeploymentBucket") {
						out[name] = r.Type + " if " + r.Condition
					}
				}
				return out
			}
			if diff := cmp.Diff(types(sls), types(sam)); diff != "" {
				t.Errorf("resources: type if condition (-serverless +sam):\n%s", diff)
			}
			for name, p := range sls.tpl.Parameters {
				if diff := cmp.Diff(p, sam.tpl.Parameters[name]); diff != "" {
					t.Errorf("parameter %s (-serverless +sam):\n%s", name, diff)
				}
			}
			var outs []string
			for name := range sls.tpl.Outputs {
				if !strings.HasPrefix(name, "ServerlessDeploymentBucket") {
					outs = append(outs, name)
					if _, ok := sam.tpl.Outputs[name]; !ok {
						t.Errorf("SAM lacks output %s", name)
					}
				}
			}
			if len(outs) != len(sam.tpl.Outputs) {
				t.Errorf("outputs: serverless %v, SAM %d", outs, len(sam.tpl.Outputs))
			}
			if diff := cmp.Diff(sls.tpl.Conditions, sam.tpl.Conditions); diff != "" {
				t.Errorf("conditions (-serverless +sam):\n%s", diff)
			}
			for _, k := range []string{"CreateUserPool", "CreateExampleApi", "CreateAuthorizer", "ExistingUserPoolArn", "TriggerVersion"} {
				if sls.params[k] != sam.params[k] {
					t.Errorf("stage %s parameter %s: serverless %q, SAM %q", stage, k, sls.params[k], sam.params[k])
				}
			}
		})
	}
}
