package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// actorFlag names who makes a change, for the audit trail.
type actorFlag struct {
	Actor string `env:"PRETOKEN_ACTOR" placeholder:"WHO" help:"Who makes the change, for the audit trail (default: the AWS caller identity's ARN, else $USER)."`
}

// resolve returns the actor: the flag, else the AWS caller's ARN, else $USER.
func (a actorFlag) resolve(ctx context.Context, e *env, t tableFlag) string {
	if a.Actor != "" {
		return a.Actor
	}
	// An endpoint override means DynamoDB Local or a test: no AWS identity to name.
	if cfg, err := t.config(ctx, e); err == nil && os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" && os.Getenv("AWS_ENDPOINT_URL") == "" {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if out, err := sts.NewFromConfig(cfg).GetCallerIdentity(cctx, &sts.GetCallerIdentityInput{}); err == nil && out.Arn != nil {
			return *out.Arn
		}
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// readPolicyFile parses a policy file; on problems it prints every one and
// returns exitCode(1).
func readPolicyFile(e *env, path, after string) (*permissions.Policy, error) {
	p, err := permissions.ReadFile(path)
	return p, reportProblems(e, path, err, after)
}

// reportProblems prints every problem of a *permissions.FileError with its
// place, then a count, and turns it into exitCode(1); other errors pass.
func reportProblems(e *env, path string, err error, after string) error {
	var ferr *permissions.FileError
	if !errors.As(err, &ferr) {
		return err
	}
	fmt.Fprintln(e.stderr, ferr.Error())
	fmt.Fprintf(e.stderr, "%s: %d problem(s)%s\n", path, len(ferr.Problems), after)
	return exitCode(1)
}

type planJSON struct {
	Table   string               `json:"table"`
	Version string               `json:"version"`
	Changes []permissions.Change `json:"changes"`
}

func printPlan(w io.Writer, table, version string, changes []permissions.Change, asJSON bool) error {
	if asJSON {
		if changes == nil {
			changes = []permissions.Change{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(planJSON{Table: table, Version: version, Changes: changes})
	}
	if len(changes) == 0 {
		fmt.Fprintf(w, "no changes: table %s (version %s) already holds this policy\n", table, version)
		return nil
	}
	for _, c := range changes {
		fmt.Fprintln(w, c)
	}
	fmt.Fprintf(w, "plan: %d change(s) to table %s at version %s\n", len(changes), table, version)
	return nil
}

type planCmd struct {
	tableFlag
	policyArg
	JSON bool `name:"json" help:"Print the plan as JSON."`
}

// Run exits 0 with no changes, 2 with changes, 1 on error, like
// terraform plan -detailed-exitcode.
func (c *planCmd) Run(e *env) error {
	if path, err := c.path(); err != nil || path == "" {
		return cmp.Or(err, usagef("name the policy file to compare: pretoken plan FILE (or -f FILE)"))
	}
	p, err := readPolicyFile(e, c.File, "")
	if err != nil {
		return err
	}
	ctx := context.Background()
	s, err := c.store(ctx, e)
	if err != nil {
		return err
	}
	res, err := s.Apply(ctx, p, dynamo.ApplyOptions{DryRun: true})
	if err != nil {
		return err
	}
	if err := printPlan(e.stdout, c.Table, res.OldVersion, res.Changes, c.JSON); err != nil {
		return err
	}
	if len(res.Changes) > 0 {
		noteLosses(ctx, e, s, p)
		return exitCode(2)
	}
	return nil
}

// noteLosses says on stderr which groups' members lose a permission with
// p, and how to make it take effect before their tokens expire.
func noteLosses(ctx context.Context, e *env, s *dynamo.Store, p *permissions.Policy) {
	old, _, err := s.Load(ctx)
	if err != nil {
		return
	}
	for _, l := range permissions.Losses(old, p) {
		who, how := "members of group "+l.Group+" lose", "pretoken signout --group "+l.Group
		if l.Group == "defaults" {
			who, how = "every signed-in user loses (default roles)", "signing users out"
		}
		fmt.Fprintf(e.stderr, "note: %s %s; tokens already issued keep it until they expire: %s revokes their refresh tokens\n",
			who, strings.Join(l.Permissions, " "), how)
	}
}

type applyCmd struct {
	tableFlag
	actorFlag
	policyArg
	ExpectVersion string `placeholder:"N" help:"Refuse to apply unless the stored policy is at version N (plan at N, apply at N)."`
	DryRun        bool   `name:"dry-run" help:"Print the plan and stop; nothing is written."`
	Yes           bool   `short:"y" help:"Apply without asking (on a terminal, apply shows the plan and asks first)."`
	RemoveAll     bool   `name:"remove-all" help:"Allow a file with no roles to remove every role from the table."`
}

func (c *applyCmd) Run(e *env) error {
	if c.ExpectVersion != "" {
		if n, err := strconv.ParseUint(c.ExpectVersion, 10, 63); err != nil || strconv.FormatUint(n, 10) != c.ExpectVersion {
			return usagef("--expect-version %q: want a policy version number, as plan prints it", c.ExpectVersion)
		}
	}
	if path, err := c.path(); err != nil || path == "" {
		return cmp.Or(err, usagef("name the policy file to apply: pretoken apply FILE (or -f FILE)"))
	}
	p, err := readPolicyFile(e, c.File, "; nothing was applied")
	if err != nil {
		return err
	}
	ctx := context.Background()
	s, err := c.store(ctx, e)
	if err != nil {
		return err
	}
	plan, err := s.Apply(ctx, p, dynamo.ApplyOptions{ExpectVersion: c.ExpectVersion, DryRun: true})
	if err != nil {
		return err
	}
	if len(p.Roles) == 0 && removesRoles(plan.Changes) && !c.RemoveAll {
		return usagef("%s has no roles: applying it would remove every role from table %s; add --remove-all if that is what you mean; nothing was applied", c.File, c.Table)
	}
	if err := printPlan(e.stdout, c.Table, plan.OldVersion, plan.Changes, false); err != nil {
		return err
	}
	switch {
	case c.DryRun:
		fmt.Fprintln(e.stdout, "dry run: nothing was written")
		return nil
	case len(plan.Changes) == 0 && !plan.Repaired:
		// Still apply: it removes what abandoned applies left behind.
	case e.terminal && !c.Yes:
		if !confirm(e, fmt.Sprintf("Apply %d change(s) to table %s? [y/N] ", len(plan.Changes), c.Table)) {
			fmt.Fprintln(e.stdout, "not applied: nothing was written")
			return nil
		}
	}
	if len(plan.Changes) > 0 {
		noteLosses(ctx, e, s, p)
	}
	// What was shown is what is applied: a table that moved meanwhile is a conflict.
	res, err := s.Apply(ctx, p, dynamo.ApplyOptions{ExpectVersion: plan.OldVersion, Actor: c.resolve(ctx, e, c.tableFlag)})
	if err != nil {
		return err
	}
	if res.Leftovers > 0 {
		fmt.Fprintf(e.stdout, "removed %d item(s) that abandoned applies left behind\n", res.Leftovers)
	}
	if res.Applied {
		what := "applied"
		if res.Repaired {
			what = "applied (the damaged policy was replaced whole)"
		}
		fmt.Fprintf(e.stdout, "%s: table %s policy version %s -> %s\n", what, c.Table, res.OldVersion, res.NewVersion)
	}
	return nil
}

func removesRoles(changes []permissions.Change) bool {
	for _, c := range changes {
		if c.Op == "-" && c.Kind == "role" {
			return true
		}
	}
	return false
}

// confirm asks a yes/no question on the terminal; anything but y or yes is no.
func confirm(e *env, question string) bool {
	fmt.Fprint(e.stdout, question)
	answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return true
	}
	return false
}

type exportCmd struct {
	tableFlag
	Output string `short:"o" placeholder:"FILE" help:"Write to FILE instead of standard output."`
	Force  bool   `help:"With -o, replace an existing file (its comments are lost: export writes none)."`
}

func (c *exportCmd) Run(e *env) error {
	ctx := context.Background()
	s, err := c.store(ctx, e)
	if err != nil {
		return err
	}
	p, version, err := s.Load(ctx)
	if err != nil {
		return err
	}
	out, err := permissions.MarshalFile(p, fmt.Sprintf("pretoken policy exported from table %s at version %s", c.Table, version))
	if err != nil {
		return err
	}
	if c.Output == "" {
		_, err = e.stdout.Write(out)
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if c.Force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(c.Output, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return usagef("%s exists; export would replace it and drop its comments: write elsewhere, or add --force", c.Output)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(out); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type historyCmd struct {
	tableFlag
	Limit int    `placeholder:"N" help:"Show at most N records."`
	Since string `placeholder:"T" help:"Only records at or after T: a time (2026-11-25 or RFC 3339) or a duration ago (24h)."`
	JSON  bool   `name:"json" help:"Print the records as JSON."`
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--since %q is neither a time (2026-11-25, RFC 3339) nor a duration (24h)", s)
}

func (c *historyCmd) Run(e *env) error {
	since, err := parseSince(c.Since, time.Now())
	if err != nil {
		return err
	}
	if c.Limit < 0 {
		return usagef("--limit must not be negative")
	}
	ctx := context.Background()
	s, err := c.store(ctx, e)
	if err != nil {
		return err
	}
	records, err := s.History(ctx, c.Limit, since)
	if err != nil {
		return err
	}
	if c.JSON {
		if records == nil {
			records = []dynamo.AuditRecord{}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(records)
	}
	if len(records) == 0 {
		fmt.Fprintln(e.stdout, "no changes recorded")
	}
	for _, r := range records {
		fmt.Fprintf(e.stdout, "%s  %s  %s %s  %s -> %s\n", r.Time.UTC().Format(time.RFC3339), r.Actor, r.Action, r.Target, r.OldVersion, r.NewVersion)
		for _, ch := range r.Changes {
			fmt.Fprintf(e.stdout, "    %s\n", ch)
		}
	}
	return nil
}

// assignment is what assign and unassign take.
type assignment struct {
	tableFlag
	actorFlag
	Sub    string   `arg:"" help:"The user's sub (the Cognito user id)."`
	Roles  []string `arg:"" help:"Roles (assign: each must exist in the stored policy)."`
	Tenant string   `placeholder:"T" help:"The roles are the user's in tenant T (a membership), not global."`
	Force  bool     `help:"Take SUB as given, even if it does not look like a Cognito sub (a UUID)."`
}

// change is Assign or Unassign; inTenant the same within one tenant.
type change struct {
	global   func(s *dynamo.Store, ctx context.Context, sub string, roles []string, actor string) (dynamo.AssignResult, error)
	inTenant func(s *dynamo.Store, ctx context.Context, sub, tenant string, roles []string, actor string) (dynamo.AssignResult, error)
}

func (c *assignment) run(e *env, ch change) error {
	if !c.Force {
		if err := checkSub(c.Sub); err != nil {
			return err
		}
	}
	ctx := context.Background()
	s, err := c.store(ctx, e)
	if err != nil {
		return err
	}
	actor := c.resolve(ctx, e, c.tableFlag)
	var res dynamo.AssignResult
	if c.Tenant != "" {
		res, err = ch.inTenant(s, ctx, c.Sub, c.Tenant, c.Roles, actor)
	} else {
		res, err = ch.global(s, ctx, c.Sub, c.Roles, actor)
	}
	if err != nil {
		return err
	}
	who := "user " + c.Sub
	if c.Tenant != "" {
		who += " in tenant " + c.Tenant
		warnNoTenancy(ctx, e, s)
	}
	if !res.Changed {
		fmt.Fprintf(e.stdout, "no change: %s has roles [%s]\n", who, strings.Join(res.After, " "))
		return nil
	}
	fmt.Fprintf(e.stdout, "%s: roles [%s] -> [%s]\n", who, strings.Join(res.Before, " "), strings.Join(res.After, " "))
	return nil
}

type assignCmd struct{ assignment }

func (c *assignCmd) Run(e *env) error {
	return c.run(e, change{(*dynamo.Store).Assign, (*dynamo.Store).AssignInTenant})
}

type unassignCmd struct {
	assignment
	poolFlag
	SignOut bool `name:"sign-out" help:"Then sign the user out (AdminUserGlobalSignOut: refresh tokens revoked, so the next sign-in gets the new roles); needs --user-pool-id."`
}

func (c *unassignCmd) Run(e *env) error {
	if c.SignOut && c.UserPoolID == "" {
		return usagef("--sign-out needs --user-pool-id or PRETOKEN_USER_POOL_ID")
	}
	if err := c.run(e, change{(*dynamo.Store).Unassign, (*dynamo.Store).UnassignInTenant}); err != nil || !c.SignOut {
		return err
	}
	ctx := context.Background()
	api, err := c.client(ctx, e)
	if err != nil {
		return err
	}
	return signOutEach(ctx, e, api, c.UserPoolID, []string{c.Sub})
}

type userCmd struct {
	tableFlag
	Sub string `arg:"" help:"The user's sub (the Cognito user id)."`
}

func (c *userCmd) Run(e *env) error {
	ctx := context.Background()
	s, err := c.store(ctx, e)
	if err != nil {
		return err
	}
	snap, err := loadTable(ctx, s)
	if err != nil {
		return err
	}
	u, err := s.User(ctx, c.Sub)
	if err != nil {
		return err
	}
	roles, perms := snap.Expand(u.Roles)
	fmt.Fprintf(e.stdout, "user %s (policy version %s)\n", c.Sub, snap.Version())
	fmt.Fprintf(e.stdout, "direct roles:   %s\n", list(u.Roles))
	fmt.Fprintf(e.stdout, "with inherited: %s\n", list(roles))
	fmt.Fprintf(e.stdout, "permissions:    %s\n", list(perms))
	for _, t := range slices.Sorted(maps.Keys(u.Memberships)) {
		mark := ""
		if t == u.Active {
			mark = " (active)"
		}
		_, tperms := snap.Expand(u.Memberships[t])
		fmt.Fprintf(e.stdout, "tenant %s%s: roles %s; permissions %s\n", t, mark, list(u.Memberships[t]), list(tperms))
	}
	if u.Active != "" && u.Memberships[u.Active] == nil {
		fmt.Fprintf(e.stdout, "stored active tenant %s is not a membership: tokens get no tenant\n", u.Active)
	}
	if len(u.Roles) > 0 || len(u.Memberships) > 0 {
		fmt.Fprintln(e.stdout, "(groups and default roles add to these at sign-in, and only the active tenant's roles; see pretoken explain --table … --user …)")
	}
	return nil
}

type tenantCmd struct {
	Members tenantMembersCmd `cmd:"" help:"List a tenant's members and their roles there."`
	Use     tenantUseCmd     `cmd:"" help:"Make a tenant the user's active tenant (the user must be a member); the user's next tokens are for it."`
}

type tenantMembersCmd struct {
	tableFlag
	Tenant string `arg:"" help:"The tenant id."`
}

func (c *tenantMembersCmd) Run(e *env) error {
	ctx := context.Background()
	s, err := c.store(ctx, e)
	if err != nil {
		return err
	}
	members, err := s.TenantMembers(ctx, c.Tenant)
	if err != nil {
		return err
	}
	if len(members) == 0 {
		fmt.Fprintf(e.stdout, "tenant %s has no members\n", c.Tenant)
	}
	for _, m := range members {
		fmt.Fprintf(e.stdout, "%s  %s\n", m.Sub, strings.Join(m.Roles, " "))
	}
	return nil
}

type tenantUseCmd struct {
	tableFlag
	actorFlag
	Sub    string `arg:"" help:"The user's sub."`
	Tenant string `arg:"" help:"The tenant to make active."`
}

func (c *tenantUseCmd) Run(e *env) error {
	ctx := context.Background()
	s, err := c.store(ctx, e)
	if err != nil {
		return err
	}
	if err := s.SetActiveTenant(ctx, c.Sub, c.Tenant, c.resolve(ctx, e, c.tableFlag)); err != nil {
		return err
	}
	warnNoTenancy(ctx, e, s)
	fmt.Fprintf(e.stdout, "user %s: active tenant %s (the user's next tokens are for it: refresh them)\n", c.Sub, c.Tenant)
	return nil
}

// loadTable loads and compiles the table's policy.
func loadTable(ctx context.Context, s *dynamo.Store) (*permissions.Snapshot, error) {
	p, version, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	return permissions.Compile(p, version)
}
