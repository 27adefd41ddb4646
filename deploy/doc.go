// Package deploy holds what pretoken knows about a deployment: the IAM
// action lists the roles and policies grant (iam.go); attaching the trigger
// to a user pool that exists, with Cognito's invoke permission (attach.go);
// the read-only checks of a deployed setup behind pretoken doctor
// (doctor.go); and the offline tests that read the CloudFormation template
// which `make package` generates from serverless.yml and assert what a
// reviewer would check by hand (runtime, artifact, least privilege, the pre
// token generation config, the invoke permission, table protection, alarms).
package deploy
