package main

import (
	"github.com/pretoken/pretoken/deploy"
)

type iamPolicyCmd struct {
	Table    string     `required:"" placeholder:"ARN" help:"ARN of the policy table (the stack's PolicyTableArn output)."`
	For      deploy.Who `required:"" enum:"trigger,admin,readonly" placeholder:"trigger|admin|readonly" help:"Whose policy: the trigger function, an operator or CI job that changes the table, or one who only reviews it."`
	UserPool string     `placeholder:"ARN" help:"With --for admin: also allow pretoken attach on this user pool."`
}

func (c *iamPolicyCmd) Run(e *env) error {
	doc, err := deploy.Policy(c.For, c.Table, c.UserPool)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(doc.JSON())
	return err
}
