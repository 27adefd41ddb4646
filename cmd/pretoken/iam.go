package main

import (
	"github.com/pretoken/pretoken/deploy"
)

type iamPolicyCmd struct {
	Table    string     `required:"" placeholder:"ARN" help:"ARN of the policy table (the stack's PolicyTableArn output)."`
	For      deploy.Who `required:"" enum:"trigger,admin,readonly" placeholder:"trigger|admin|readonly" help:"Whose policy: the trigger function, an operator or CI job that changes the table, or one who only reviews it."`
	UserPool string     `placeholder:"ARN" help:"With --for admin: also allow pretoken attach, signout and doctor on this user pool."`
	Function string     `name:"function-arn" placeholder:"ARN" help:"With --for admin: also allow attach to manage Cognito's invoke permission on this function (lambda:GetPolicy, AddPermission, RemovePermission), and doctor to read it."`
}

func (c *iamPolicyCmd) Run(e *env) error {
	doc, err := deploy.Policy(c.For, c.Table, c.UserPool, c.Function)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(doc.JSON())
	return err
}
