// Package deploy holds the offline checks of the deployment: tests that read
// the CloudFormation template which `make package` generates from
// serverless.yml and assert what a reviewer would check by hand (runtime,
// artifact, least privilege, the pre token generation config, the invoke
// permission, table protection, alarms).
package deploy
