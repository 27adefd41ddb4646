package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/pretoken/pretoken/trigger"
)

// summarize writes, readably, what each token gets from a reply.
func summarize(w io.Writer, r *trigger.Reply) {
	who := "user " + r.UserName
	if r.Machine() {
		who = "machine client (client credentials)"
	}
	fmt.Fprintf(w, "event V%s %s, client %s, %s, groups: %s\n", r.Version, r.TriggerSource,
		r.CallerContext.ClientID, who, list(r.Request.GroupConfiguration.GroupsToOverride))
	if d := r.Response.ClaimsOverrideDetails; d != nil {
		fmt.Fprintln(w, "ID token (V1: claim values are strings):")
		lines := 0
		for _, name := range slices.Sorted(maps.Keys(d.ClaimsToAddOrOverride)) {
			fmt.Fprintf(w, "  + %s: %s\n", name, jsonText(d.ClaimsToAddOrOverride[name]))
			lines++
		}
		lines += suppressed(w, d.ClaimsToSuppress)
		nothing(w, lines, "a V1 event changes only the ID token, and this client's idToken profile gives this user no claims")
		groupLine(w, d.GroupOverrideDetails)
		fmt.Fprintln(w, "access token: unchanged (V1 events change the ID token only)")
		return
	}
	d := r.Response.ClaimsAndScopeOverrideDetails
	if d == nil {
		fmt.Fprintln(w, "no changes")
		return
	}
	if !r.Machine() {
		fmt.Fprintln(w, "ID token:")
		tokenLines(w, d.IDTokenGeneration, "this client's idToken profile gives this user no claims")
	}
	fmt.Fprintln(w, "access token:")
	tokenLines(w, d.AccessTokenGeneration, "this client's accessToken profile gives this caller no scopes or claims")
	groupLine(w, d.GroupOverrideDetails)
}

func tokenLines(w io.Writer, g *trigger.TokenGeneration, why string) {
	if g == nil {
		nothing(w, 0, why)
		return
	}
	lines := 0
	if len(g.ScopesToAdd) > 0 {
		fmt.Fprintf(w, "  + scopes: %s\n", strings.Join(g.ScopesToAdd, " "))
		lines++
	}
	if len(g.ScopesToSuppress) > 0 {
		fmt.Fprintf(w, "  - scopes: %s\n", strings.Join(g.ScopesToSuppress, " "))
		lines++
	}
	for _, name := range slices.Sorted(maps.Keys(g.ClaimsToAddOrOverride)) {
		fmt.Fprintf(w, "  + %s: %s\n", name, jsonText(g.ClaimsToAddOrOverride[name]))
		lines++
	}
	lines += suppressed(w, g.ClaimsToSuppress)
	nothing(w, lines, why)
}

func suppressed(w io.Writer, claims []string) int {
	if len(claims) == 0 {
		return 0
	}
	fmt.Fprintf(w, "  - claims: %s\n", strings.Join(claims, " "))
	return 1
}

// nothing says why a token gets nothing, where it does.
func nothing(w io.Writer, lines int, why string) {
	if lines == 0 {
		fmt.Fprintf(w, "  (nothing added: %s)\n", why)
	}
}

func groupLine(w io.Writer, g *trigger.GroupConfiguration) {
	if g == nil {
		return
	}
	fmt.Fprintf(w, "groups kept as Cognito sent them: %s\n", list(g.GroupsToOverride))
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
