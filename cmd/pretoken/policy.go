package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/trigger"
)

type validateCmd struct {
	policyArg
}

func (c *validateCmd) Run(e *env) error {
	if path, err := c.path(); err != nil {
		return err
	} else if path == "" {
		return usagef("name the policy file: pretoken validate FILE (or -f FILE)")
	}
	snap, err := permissions.LoadFile(c.File)
	if err := reportProblems(e, c.File, err, ""); err != nil {
		return err
	}
	p := snap.Policy()
	for _, r := range permissions.Ungranted(p) {
		fmt.Fprintf(e.stderr, "note: %s: role %q is granted by no group, default, machine client or IdP group: only assign and tenant memberships can give it\n", c.File, r)
	}
	for _, id := range keepAdminScope(p) {
		fmt.Fprintf(e.stderr, "note: %s: client profile %s keeps aws.cognito.signin.user.admin, with which a user of an identity provider can write the idpGroups attribute and give themselves its roles: add it to accessToken.suppressScopes (a V1_0 pool cannot suppress it; leave the attribute out of that client's write attributes where the client does not federate)\n", c.File, id)
	}
	fmt.Fprintf(e.stdout, "%s: valid (%d roles, %d groups, %d default roles, %d machine clients, %d client profiles; version %s)\n",
		c.File, len(p.Roles), len(p.Groups), len(p.Defaults.Roles), len(p.Machines), len(p.Clients), snap.Version())
	printTrusted(e.stdout, p)
	return nil
}

// keepAdminScope lists, where the policy maps identity-provider groups, the
// client profiles (default included) whose access tokens keep the scope that
// lets users write their own attributes: a federated user could then write
// the groups attribute.
func keepAdminScope(p *permissions.Policy) []string {
	if len(p.IdPGroups) == 0 {
		return nil
	}
	var out []string
	if _, ok := p.Clients[permissions.DefaultProfile]; !ok {
		out = append(out, permissions.DefaultProfile)
	}
	for id, c := range p.Clients {
		if !slices.Contains(c.AccessToken.SuppressScopes, "aws.cognito.signin.user.admin") {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// printTrusted lists the user attributes the policy trusts: a user who can
// write one can put any value into it, so each must be left out of every
// app client's write attributes.
func printTrusted(w io.Writer, p *permissions.Policy) {
	trusted := permissions.TrustedAttributes(p)
	if len(trusted) == 0 {
		return
	}
	fmt.Fprintln(w, "trusted user attributes (leave each out of every app client's write attributes):")
	width := 0
	for _, a := range trusted {
		width = max(width, len(a.Name))
	}
	for _, a := range trusted {
		fmt.Fprintf(w, "  %-*s  %s\n", width, a.Name, a.Why)
	}
}

// loadPolicy loads a policy for a command that reports it in one line.
func loadPolicy(path string) (*permissions.Snapshot, error) {
	snap, err := permissions.LoadFile(path)
	var ferr *permissions.FileError
	if errors.As(err, &ferr) {
		more := ""
		if n := len(ferr.Problems) - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more; see pretoken validate -f %s)", n, path)
		}
		return nil, fmt.Errorf("invalid policy %s:%s%s", path, ferr.Problems[0], more)
	}
	return snap, err
}

type simulateCmd struct {
	policyArg
	URL     string   `placeholder:"URL" help:"Instead of a policy file, send the events to a running function's invoke URL (aws-lambda-rie's)."`
	Event   []string `required:"" placeholder:"FILE" help:"Event JSON file; repeat for several."`
	Summary bool     `help:"Print what each token gets, readably, instead of the response JSON."`
}

// invoker answers one raw event.
type invoker func(payload []byte) ([]byte, error)

func (c *simulateCmd) invoker() (invoker, *permissions.Policy, error) {
	if c.URL != "" {
		return func(payload []byte) ([]byte, error) { return invokeURL(c.URL, payload) }, nil, nil
	}
	snap, err := loadPolicy(c.File)
	if err != nil {
		return nil, nil, err
	}
	h := trigger.New(trigger.Static{S: snap}, zerolog.Nop())
	return func(payload []byte) ([]byte, error) { return h.Invoke(context.Background(), payload) }, snap.Policy(), nil
}

// invokeURL posts payload to a Lambda invoke URL. A function error comes
// back with HTTP 200 and an errorMessage.
func invokeURL(url string, payload []byte) ([]byte, error) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	var fe struct {
		ErrorMessage *string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &fe) == nil && fe.ErrorMessage != nil {
		return nil, errors.New(*fe.ErrorMessage)
	}
	return body, nil
}

func (c *simulateCmd) Run(e *env) error {
	switch path, err := c.path(); {
	case err != nil:
		return err
	case path != "" && c.URL != "":
		return usagef("run the events on a policy file or on --url, not both")
	case path == "" && c.URL == "":
		return usagef("name a policy file (pretoken simulate FILE --event E, or -f FILE) or a running function (--url URL)")
	}
	invoke, policy, err := c.invoker()
	if err != nil {
		return err
	}
	for i, path := range c.Event {
		payload, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read event: %w", err)
		}
		out, err := invoke(payload)
		if err != nil && err.Error() == trigger.ErrMalformed.Error() {
			if _, derr := trigger.DecodeEvent(payload); derr != nil {
				return fmt.Errorf("%s: malformed event: %v", path, derr)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: the trigger answered with an error: %v", path, err)
		}
		if ev, derr := trigger.DecodeEvent(payload); derr == nil && policy != nil {
			warn(e.stderr, path+": ", unmatched(policy, eventPreview(ev)))
		}
		if !c.Summary {
			fmt.Fprintf(e.stdout, "%s\n", out)
			continue
		}
		var reply trigger.Reply
		if err := json.Unmarshal(out, &reply); err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		fmt.Fprintf(e.stdout, "== %s\n", path)
		summarize(e.stdout, &reply)
	}
	return nil
}

type explainCmd struct {
	policyArg
	Table             string            `env:"PRETOKEN_TABLE" placeholder:"NAME" help:"Instead of a policy file, explain the live policy in this DynamoDB table."`
	User              string            `placeholder:"SUB" help:"With --table: include the roles assigned to this user (by sub)."`
	Client            string            `required:"" placeholder:"ID" help:"App client id the tokens are issued to."`
	Group             []string          `placeholder:"G" help:"A Cognito group of the user; repeat for several."`
	Attr              map[string]string `placeholder:"K=V" help:"A user attribute, for attribute: claims; repeat for several."`
	Version           eventVersion      `default:"2" placeholder:"1|2|3" help:"Event version: 1 (ID token only), 2 or 3 (both tokens); v1 and V1_0 work too."`
	ClientCredentials bool              `help:"A client-credentials token for a machine client (needs --version 3)."`
	Tenant            string            `placeholder:"T" help:"The token's active tenant (with --table and --user, one of the user's memberships; else one of --membership)."`
	Membership        map[string]string `placeholder:"T=ROLE,ROLE" help:"A membership for the preview: the user's roles in tenant T; repeat for several."`
	IdPGroup          []string          `name:"idp-group" placeholder:"G" help:"A group from the identity provider, as in the policy's idpGroups attribute; repeat for several."`
	IdP               string            `name:"idp" placeholder:"PROVIDER" help:"The identity provider the user signs in through (the providerName in identities); with --idp-group, needed when the policy maps several."`
}

func (c *explainCmd) Run(e *env) error {
	if err := c.check(); err != nil {
		return err
	}
	ctx := context.Background()
	h, snap, err := c.handler(ctx, e)
	if err != nil {
		return err
	}
	tenant := c.Tenant
	if tenant == "" && len(c.Membership) > 0 {
		tenant = slices.Sorted(maps.Keys(c.Membership))[0]
	}
	warn(e.stderr, "", unmatched(snap.Policy(), preview{client: c.Client, machine: c.ClientCredentials, groups: c.Group, tenant: tenant}))
	x, err := h.Explain(ctx, c.event(snap))
	if err != nil {
		return fmt.Errorf("the trigger answered with an error: %v", err)
	}
	if c.User != "" && len(x.Assigned) > 0 {
		warn(e.stderr, "", []string{assignedWarning(c.User, x.Assigned)})
	}
	c.print(e.stdout, x)
	return nil
}

func (c *explainCmd) check() error {
	if _, err := c.path(); err != nil {
		return err
	}
	if c.File != "" && c.Table != "" {
		if c.Table != os.Getenv("PRETOKEN_TABLE") {
			return usagef("explain a policy file (-f) or a table (--table), not both")
		}
		c.Table = "" // the file wins over the table in PRETOKEN_TABLE
	}
	if c.File == "" && c.Table == "" {
		return usagef("name what to explain: a policy file (pretoken explain FILE, or -f FILE), or --table NAME (or PRETOKEN_TABLE)")
	}
	if c.ClientCredentials && c.Version != "3" {
		return usagef("--client-credentials needs --version 3: only V3_0 events fire for client credentials")
	}
	if c.User != "" && c.Table == "" {
		return usagef("--user needs --table: assignments live in the table")
	}
	if c.User != "" && len(c.Membership) > 0 {
		return usagef("--membership is for previews without --user: the table holds the user's memberships")
	}
	return nil
}

// previewUser is the user data of a preview: the flags' memberships, or the
// table's user with the active tenant the flags ask for.
type previewUser struct {
	table  trigger.Users
	fixed  permissions.User
	tenant string
}

func (p previewUser) User(ctx context.Context, sub string) (permissions.User, error) {
	u := p.fixed
	if p.table != nil {
		var err error
		if u, err = p.table.User(ctx, sub); err != nil {
			return u, err
		}
	}
	if p.tenant != "" {
		u.Active = p.tenant
	}
	return u, nil
}

func (c *explainCmd) preview() previewUser {
	p := previewUser{tenant: c.Tenant}
	for t, roles := range c.Membership {
		if p.fixed.Memberships == nil {
			p.fixed.Memberships = map[string][]string{}
		}
		p.fixed.Memberships[t] = strings.Split(roles, ",")
	}
	return p
}

// handler is the trigger as the function runs it, on the policy file or
// the table, with the user data of the preview (for --user, the table's).
func (c *explainCmd) handler(ctx context.Context, e *env) (*trigger.Handler, *permissions.Snapshot, error) {
	users := c.preview()
	var snap *permissions.Snapshot
	if c.Table == "" {
		var err error
		if snap, err = loadPolicy(c.File); err != nil {
			return nil, nil, err
		}
	} else {
		s, err := tableFlag{Table: c.Table}.store(ctx, e)
		if err != nil {
			return nil, nil, err
		}
		if snap, err = loadTable(ctx, s); err != nil {
			return nil, nil, err
		}
		if c.User != "" {
			users.table = s
		}
	}
	return trigger.New(trigger.Static{S: snap}, zerolog.Nop(), trigger.WithUsers(users, c.User != "")), snap, nil
}

// event is the pre token generation event Cognito would send for the flags.
func (c *explainCmd) event(snap *permissions.Snapshot) *trigger.Event {
	ev := &trigger.Event{
		Version:       trigger.Version(c.Version),
		TriggerSource: "TokenGeneration_HostedAuth",
		CallerContext: trigger.CallerContext{ClientID: c.Client},
	}
	if c.ClientCredentials {
		ev.TriggerSource = trigger.ClientCredentials
		return ev
	}
	attrs := maps.Clone(c.Attr)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["sub"] = "explain"
	if c.User != "" {
		attrs["sub"] = c.User
	}
	if name, ok := strings.CutPrefix(snap.Tenancy().Active, permissions.SourceAttribute); ok && c.Tenant != "" {
		attrs[name] = c.Tenant
	}
	if c.IdP != "" {
		id, _ := json.Marshal([]map[string]string{{"providerName": c.IdP, "userId": "explain", "primary": "true"}})
		attrs[permissions.IdentitiesAttribute] = string(id)
	}
	for _, g := range snap.IdPGroups() {
		if len(c.IdPGroup) > 0 && (g.Provider == c.IdP || c.IdP == "" && len(snap.IdPGroups()) == 1) {
			if c.IdP == "" {
				id, _ := json.Marshal([]map[string]string{{"providerName": g.Provider, "userId": "explain", "primary": "true"}})
				attrs[permissions.IdentitiesAttribute] = string(id)
			}
			b, _ := json.Marshal(c.IdPGroup)
			attrs[g.Attribute] = string(b)
		}
	}
	ev.UserName = "explain"
	ev.Request.UserAttributes = attrs
	ev.Request.GroupConfiguration.GroupsToOverride = c.Group
	return ev
}

func (c *explainCmd) print(w io.Writer, x trigger.Explanation) {
	fmt.Fprintf(w, "policy %s, client profile %q\n", x.PolicyVersion, x.Result.Profile)
	if c.User != "" {
		fmt.Fprintf(w, "assigned:     %s\n", list(x.Assigned))
	}
	if x.Tenant != "" {
		fmt.Fprintf(w, "tenant:       %s\n", x.Tenant)
	}
	if x.TenantRefused != "" {
		fmt.Fprintf(w, "tenant:       none (%s is not one of the user's memberships)\n", x.TenantRefused)
	}
	fmt.Fprintf(w, "roles:        %s\n", list(x.Result.Roles))
	fmt.Fprintf(w, "permissions:  %s\n", list(x.Result.Permissions))
	summarize(w, x.Reply)
}

func list(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, " ")
}
