package deploy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
)

// Who is a kind of principal that works with the policy table.
type Who string

// The principals pretoken ships IAM policies for.
const (
	// Trigger is the Lambda function: it reads the policy and, with user
	// assignments on, one user item per token.
	Trigger Who = "trigger"
	// Readonly is an operator who reviews: plan, export, history, user,
	// explain --table, migrate status.
	Readonly Who = "readonly"
	// Admin is an operator or CI job that changes the table: migrate, apply,
	// assign, unassign, and everything Readonly does.
	Admin Who = "admin"
)

// Principals lists every Who, in the order the CLI documents them.
var Principals = []Who{Trigger, Admin, Readonly}

// Actions returns the DynamoDB IAM actions that who needs on the policy
// table, sorted. These lists are the contract: the tests record the actions
// that the trigger binary and every CLI command really call (through a proxy
// in front of DynamoDB Local) and fail when a call is missing here, or when
// a listed action is never called; the template test checks that the roles
// and managed policies in serverless.yml allow exactly these.
//
// Transactions have no IAM action of their own: each part needs the action
// of its kind (Put: PutItem, ConditionCheck: ConditionCheckItem).
func Actions(who Who) []string {
	var a []string
	switch who {
	case Trigger:
		// BatchGetItem: META/VERSION with the compiled snapshot's copy in
		// one request, and the snapshot's chunks when it has several;
		// GetItem: the version check; Query: a user's items (assignments,
		// memberships, active tenant), and the items of a policy that an
		// older pretoken applied.
		a = []string{"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"}
	case Readonly:
		a = []string{"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"}
	case Admin:
		a = []string{"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:DescribeTable",
			"dynamodb:CreateTable",        // migrate, when the table does not exist yet
			"dynamodb:UpdateTable",        // migrate: add the byTenant index
			"dynamodb:PutItem",            // generation markers, the switch transaction, assignments, audit records, the migration ledger and lock
			"dynamodb:DeleteItem",         // releasing the migration lock
			"dynamodb:BatchWriteItem",     // a policy's items, and removing superseded generations
			"dynamodb:ConditionCheckItem", // an assignment checks the policy version it was made against; the switch checks its generation's marker (the fence)
			"dynamodb:Scan",               // pretoken check: leftovers are where no key leads
		}
	default:
		return nil
	}
	slices.Sort(a)
	return a
}

// CognitoActions are the Cognito actions the admin CLI needs on the user
// pool: attach (DescribeUserPool, UpdateUserPool), signout
// (AdminUserGlobalSignOut, ListUsers to find a sub's username,
// ListUsersInGroup) and doctor (DescribeUserPool, ListUserPoolClients,
// DescribeUserPoolClient). Sorted.
var CognitoActions = []string{"cognito-idp:AdminUserGlobalSignOut", "cognito-idp:DescribeUserPool", "cognito-idp:DescribeUserPoolClient",
	"cognito-idp:ListUserPoolClients", "cognito-idp:ListUsers", "cognito-idp:ListUsersInGroup", "cognito-idp:UpdateUserPool"}

// LambdaActions are the Lambda actions the admin CLI needs on the trigger
// function: attach and detach manage Cognito's invoke permission (GetPolicy,
// AddPermission, RemovePermission); doctor reads the policy and the
// configuration (GetFunctionConfiguration). Sorted.
var LambdaActions = []string{"lambda:AddPermission", "lambda:GetFunctionConfiguration", "lambda:GetPolicy", "lambda:RemovePermission"}

// Resources are what who's table actions apply to: the table itself.
func Resources(who Who, table string) []string { return []string{table} }

// IndexActions are what who may do on the table's indexes: people query
// the byTenant index (tenant members); nothing writes through an index
// (DynamoDB has no such write), and the trigger reads none.
func IndexActions(who Who) []string {
	if who == Trigger {
		return nil
	}
	return []string{"dynamodb:Query"}
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid      string   `json:"Sid,omitempty"`
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

// PolicyDocument is an IAM policy document.
type PolicyDocument struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

var (
	tableARN = regexp.MustCompile(`^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]{3,255}$`)
	poolARN  = regexp.MustCompile(`^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:[0-9]{12}:userpool/[\w-]+_[0-9a-zA-Z]+$`)
)

// Policy returns the least-privilege IAM policy for who on the table with
// ARN table. For Admin, a non-empty userPool ARN adds the Cognito actions of
// `pretoken attach`, `signout` and `doctor` on that pool, and a non-empty
// function ARN the Lambda actions of attach and doctor on that function
// (and its versions and aliases), with doctor's role simulation and alarm
// listing in the function's account.
func Policy(who Who, table, userPool, function string) (PolicyDocument, error) {
	actions := Actions(who)
	if actions == nil {
		return PolicyDocument{}, fmt.Errorf("unknown principal %q: want trigger, admin or readonly", who)
	}
	if !tableARN.MatchString(table) {
		return PolicyDocument{}, fmt.Errorf("%q is not a DynamoDB table ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)", table)
	}
	doc := PolicyDocument{Version: "2012-10-17", Statement: []Statement{
		{Sid: "PretokenTable", Effect: "Allow", Action: actions, Resource: Resources(who, table)},
	}}
	if ia := IndexActions(who); ia != nil {
		doc.Statement = append(doc.Statement, Statement{Sid: "PretokenIndexes", Effect: "Allow", Action: ia, Resource: []string{table + "/index/*"}})
	}
	if function != "" {
		if who != Admin {
			return PolicyDocument{}, fmt.Errorf("only the admin policy attaches the trigger to a user pool")
		}
		fn, err := ParseFunctionARN(function)
		if err != nil {
			return PolicyDocument{}, err
		}
		doc.Statement = append(doc.Statement,
			Statement{Sid: "PretokenInvokePermission", Effect: "Allow", Action: slices.Clone(LambdaActions), Resource: []string{fn.Unqualified(), fn.Unqualified() + ":*"}},
			Statement{Sid: "PretokenDoctorRole", Effect: "Allow", Action: []string{"iam:SimulatePrincipalPolicy"}, Resource: []string{fmt.Sprintf("arn:%s:iam::%s:role/*", fn.Partition, fn.Account)}},
			Statement{Sid: "PretokenDoctorAlarms", Effect: "Allow", Action: []string{"cloudwatch:DescribeAlarms"}, Resource: []string{fmt.Sprintf("arn:%s:cloudwatch:%s:%s:alarm:*", fn.Partition, fn.Region, fn.Account)}})
	}
	if userPool != "" {
		if who != Admin {
			return PolicyDocument{}, fmt.Errorf("only the admin policy attaches the trigger to a user pool")
		}
		if !poolARN.MatchString(userPool) {
			return PolicyDocument{}, fmt.Errorf("%q is not a Cognito user pool ARN (arn:aws:cognito-idp:REGION:ACCOUNT:userpool/ID)", userPool)
		}
		doc.Statement = append(doc.Statement, Statement{Sid: "PretokenAttach", Effect: "Allow", Action: slices.Clone(CognitoActions), Resource: []string{userPool}})
	}
	return doc, nil
}

// JSON is the document as indented JSON with a final newline.
func (d PolicyDocument) JSON() []byte {
	b, _ := json.MarshalIndent(d, "", "  ")
	return append(b, '\n')
}
