package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
	"github.com/pretoken/pretoken/trigger"
)

// preview is what a preview (explain, or simulate on one event) asks
// about, for the warnings on what matches nothing in the policy.
type preview struct {
	client  string
	machine bool // a client-credentials token
	groups  []string
	tenant  string // --tenant or --membership: tenant data asked for
}

// unmatched returns one warning per input of a preview that the policy
// does not name: each would pass in silence and give less than meant.
func unmatched(p *permissions.Policy, in preview) []string {
	var out []string
	hint := func(name string, among []string) string {
		if guess := permissions.Closest(name, among); guess != "" {
			return fmt.Sprintf(" (did you mean %q?)", guess)
		}
		return ""
	}
	profiles := slices.DeleteFunc(slices.Sorted(maps.Keys(p.Clients)), func(id string) bool { return id == permissions.DefaultProfile })
	switch _, machine := p.Machines[in.client]; {
	case in.machine && !machine:
		out = append(out, fmt.Sprintf("client %q is not one of the policy's machines: its client-credentials token gets no roles%s",
			in.client, hint(in.client, slices.Sorted(maps.Keys(p.Machines)))))
	case in.machine:
		// A machine client needs no profile of its own.
	case !hasProfile(p, in.client):
		out = append(out, fmt.Sprintf("client %q has no profile in the policy's clients: the default profile applies%s",
			in.client, hint(in.client, profiles)))
	}
	if !in.machine {
		for _, g := range in.groups {
			if _, ok := p.Groups[g]; !ok {
				out = append(out, fmt.Sprintf("group %q is in none of the policy's groups: it grants nothing%s", g, hint(g, slices.Sorted(maps.Keys(p.Groups)))))
			}
		}
	}
	if in.tenant != "" && p.Tenancy.IsZero() {
		out = append(out, fmt.Sprintf("tenant %s: the policy has no tenancy, so tokens carry no tenant and no tenant's roles; add tenancy: {active: stored} (or attribute:<name>)", in.tenant))
	}
	return out
}

func hasProfile(p *permissions.Policy, client string) bool {
	_, ok := p.Clients[client]
	return ok
}

// eventPreview is what a simulated event asks about.
func eventPreview(ev *trigger.Event) preview {
	return preview{client: ev.CallerContext.ClientID, machine: ev.Machine(),
		groups: ev.Request.GroupConfiguration.GroupsToOverride}
}

func warn(w io.Writer, prefix string, warnings []string) {
	for _, s := range warnings {
		fmt.Fprintf(w, "warning: %s%s\n", prefix, s)
	}
}

// assignedWarning is the warning for a preview with a user's directly
// assigned roles: the function reads them only when told to.
func assignedWarning(sub string, assigned []string) string {
	return fmt.Sprintf("user %s's assigned roles (%s) reach tokens only where the function runs with PRETOKEN_USER_ASSIGNMENTS=true, which the stack leaves off; without it tokens get none of them",
		sub, strings.Join(assigned, " "))
}

// cognitoSub is the shape of a Cognito user's sub: a UUID.
var cognitoSub = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkSub refuses what looks like an email or a username where a sub is
// meant: roles stored under it would reach no one, in silence.
func checkSub(sub string) error {
	if cognitoSub.MatchString(sub) {
		return nil
	}
	what, attr := "a username", "username"
	if strings.Contains(sub, "@") {
		what, attr = "an email address", "email"
	}
	return usagef("%q looks like %s, not a sub (a UUID): roles are kept by sub; look it up with aws cognito-idp list-users --user-pool-id POOL --filter '%s = \"%s\"' --query 'Users[].Attributes[?Name==`sub`].Value' --output text, or add --force to use %q as it is",
		sub, what, attr, sub, sub)
}

// warnNoTenancy warns, after a change to tenant data, when the table's
// policy has no tenancy: the change is kept, but no token reads it.
func warnNoTenancy(ctx context.Context, e *env, s *dynamo.Store) {
	if p, _, err := s.Load(ctx); err == nil && p.Tenancy.IsZero() {
		warn(e.stderr, "", []string{"the table's policy has no tenancy: tokens carry no tenant and no tenant's roles until it has tenancy: {active: stored} (or attribute:<name>)"})
	}
}
