package main

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/trigger"
)

// userPolicy is tagPolicy with a role that only a direct assignment gives.
func userPolicy() *permissions.Policy {
	p := tagPolicy("good")
	p.Roles["extra"] = permissions.Role{Permissions: []string{"extra:perm"}}
	return p
}

func (r *rig) invokeAs(t *testing.T, sub string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lambdaTimeout)
	defer cancel()
	ev := strings.Replace(string(staffEvent()), `"sub":"s-1"`, `"sub":"`+sub+`"`, 1)
	start := time.Now()
	out, err := r.h.Invoke(ctx, []byte(ev))
	if took := time.Since(start); took >= lambdaTimeout {
		t.Fatalf("answered after %v, at or past the deadline", took)
	}
	if err != nil {
		return nil, err
	}
	var reply trigger.Reply
	if err := json.Unmarshal(out, &reply); err != nil {
		t.Fatal(err)
	}
	if d := reply.Response.ClaimsAndScopeOverrideDetails; d != nil && d.AccessTokenGeneration != nil {
		return d.AccessTokenGeneration.ScopesToAdd, nil
	}
	return nil, nil
}

// lastLine is the last invocation log line.
func (r *rig) lastLine(t *testing.T) map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(r.logs.String()), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFaultUserReadThrottled: with user assignments on, DynamoDB throttles
// while the trigger serves. A user read before is served stale (with the
// reason and its age in the log line) until the maximum staleness, then the
// failure mode decides; a user never read gets, with
// PRETOKEN_USER_READ_FAILURE=roles-without-user, a token from groups and
// defaults only, logged as degraded. Before, every token was refused at once
// although a snapshot existed.
func TestFaultUserReadThrottled(t *testing.T) {
	for _, mode := range []string{"", "roles-without-user"} {
		r := newRig(t, userPolicy(), map[string]string{"PRETOKEN_USER_ASSIGNMENTS": "true",
			"PRETOKEN_REFRESH_INTERVAL": "100ms", "PRETOKEN_MAX_STALENESS": "1500ms", "PRETOKEN_USER_READ_FAILURE": mode})
		if _, err := r.store.Assign(context.Background(), "s-1", []string{"extra"}, "test"); err != nil {
			t.Fatal(err)
		}
		withUser := append(scopesOf(userPolicy()), "extra:perm")
		slices.Sort(withUser)
		got, err := r.invokeAs(t, "s-1")
		if slices.Sort(got); err != nil || !slices.Equal(got, withUser) {
			t.Fatalf("before the fault: %v, %v", got, err)
		}
		verified := time.Now()
		r.proxy.SetThrottle(true)
		time.Sleep(150 * time.Millisecond) // past the refresh interval: the snapshot goes stale too
		got, err = r.invokeAs(t, "s-1")
		if slices.Sort(got); err != nil || !slices.Equal(got, withUser) {
			t.Fatalf("%q: throttled, within the staleness: %v, %v; want the user's last roles served", mode, got, err)
		}
		line := r.lastLine(t)
		if line["cache"] != "stale" || !strings.Contains(line["problem"].(string), "stale user data") ||
			!strings.Contains(line["problem"].(string), "read user") || line["stale_seconds"] == nil {
			t.Errorf("%q: stale line %v; want cache stale, the reason and how long", mode, line)
		}
		got, err = r.invokeAs(t, "s-never-read")
		switch mode {
		case "":
			if !errors.Is(err, trigger.ErrUnavailable) {
				t.Errorf("a user never read, throttled, failure mode closed: %v, %v; want refused", got, err)
			}
		default:
			if slices.Sort(got); err != nil || !slices.Equal(got, scopesOf(userPolicy())) {
				t.Errorf("roles-without-user: %v, %v; want the group's roles only", got, err)
			}
			if line := r.lastLine(t); line["degraded"] != true {
				t.Errorf("roles-without-user line %v; want degraded", line)
			}
		}
		time.Sleep(1500*time.Millisecond - time.Since(verified) + 100*time.Millisecond)
		if got, err := r.invokeAs(t, "s-1"); !errors.Is(err, trigger.ErrUnavailable) {
			t.Errorf("%q: beyond the maximum staleness: %v, %v; want refused", mode, got, err)
		}
		r.proxy.SetThrottle(false)
	}
}
