package cdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// suppressNag records, beside each finding of cdk-nag's AwsSolutions pack
// that pretoken accepts, why. The tests run the pack on every variant of
// the construct and fail on any other finding.
func (c *Pretoken) suppressNag() {
	for _, p := range []awsiam.ManagedPolicy{c.AdminPolicy, c.ReadOnlyPolicy} {
		if p == nil {
			continue
		}
		cdknag.NagSuppressions_AddResourceSuppressions(p, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-IAM5"),
			Reason: jsii.String("index/* is the table's own indexes (the byTenant index that pretoken tenant members queries); " +
				"the actions are deploy.Actions, the list the recorded-call tests hold, and no action is a wildcard"),
			AppliesTo: &[]interface{}{&cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::.*\/index\/\*$/`)}},
		}}, jsii.Bool(true))
	}
	if c.UserPool != nil {
		cdknag.NagSuppressions_AddResourceSuppressions(c.UserPool, &[]*cdknag.NagPackSuppression{
			{Id: jsii.String("AwsSolutions-COG8"), Reason: jsii.String("the plan follows the event version: Lite for V1_0 " +
				"(ID-token claims work on every plan), Essentials for V2_0/V3_0; Plus's threat protection is the pool owner's choice " +
				"and costs per user")},
			{Id: jsii.String("AwsSolutions-COG2"), Reason: jsii.String("MFA is the pool owner's choice; pretoken adds claims to " +
				"whatever sign-in the pool allows, and the demo pool must be usable without a second factor")},
		}, jsii.Bool(true))
	}
}
