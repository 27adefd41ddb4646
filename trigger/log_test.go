package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
)

// TestRecordIsTheDecision: the log line and its metrics are the decision
// that Explain returns, field for field, and every metric of the table is
// named in the _aws block with its unit and is a member of the line.
func TestRecordIsTheDecision(t *testing.T) {
	snap := loadSnapshot(t, "../examples/tenants.yaml")
	users := &memUsers{users: map[string]permissions.User{"u-1": {Memberships: map[string][]string{"acme": {"member"}, "globex": {"member"}}, Active: "acme"}}}
	var logs bytes.Buffer
	h := New(Static{S: snap}, zerolog.New(&logs), WithUsers(users, false), WithMetrics("fn"))
	ev := tenantEvent(t, map[string]string{"custom:groups": "[Okta-Support]"})
	dec, err := h.Explain(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Fatalf("Explain wrote a log line: %s", logs.String())
	}
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, logs.String())
	}
	want := map[string]any{
		"outcome": string(dec.Outcome), "policy_version": dec.PolicyVersion, "cache": string(dec.Cache),
		"roles": float64(len(dec.Result.Roles)), "scopes_added": float64(dec.ScopesAdded), "id_claims_added": float64(dec.IDClaims),
		"access_claims_added": float64(dec.AccessClaims), "id_token_bytes_added": float64(dec.IDBytes),
		"access_token_bytes_added": float64(dec.AccessBytes), "tenant": dec.Tenant, "memberships": float64(dec.Memberships),
		"user_reads": float64(dec.UserReads), "idp_groups_ignored": []any{"custom:groups for provider Okta: not a federated user (no identities)"},
	}
	for k, v := range want {
		if got, _ := json.Marshal(line[k]); string(got) != string(must(json.Marshal(v))) {
			t.Errorf("%s = %s, want %v (the decision)", k, got, v)
		}
	}
	if dec.Tenant != "acme" || dec.Memberships != 2 || dec.UserReads != 1 || dec.IDBytes == 0 {
		t.Errorf("decision: %+v", dec)
	}
	aws := line["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Metrics"].([]any)
	named := map[string]string{}
	for _, m := range aws {
		mm := m.(map[string]any)
		named[mm["Name"].(string)] = mm["Unit"].(string)
	}
	for _, m := range metrics {
		_, on := m.value(sample{outcome: dec.Outcome, cache: dec.Cache, took: time.Millisecond})
		if !on {
			continue
		}
		if named[m.name] != m.unit {
			t.Errorf("metric %s: unit %q in the _aws block, want %q", m.name, named[m.name], m.unit)
		}
		if _, ok := line[m.name].(float64); !ok {
			t.Errorf("metric %s is not a member of the line", m.name)
		}
	}
	if _, ok := named["StaleSeconds"]; ok {
		t.Error("StaleSeconds named while the snapshot is not stale")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
