package trigger

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
)

// record writes the invocation's one log line from its decision: info when
// a token was issued as the policy says, warn when it was refused or
// degraded (over budget, failure mode), error when something that should
// never happen did (a store failure, a panic, a reserved claim or scope
// reaching the trigger). With metrics on, the line carries them whatever
// the log level: a line the level leaves out still goes out with its
// level, outcome and metrics, and nothing else.
func (h *Handler) record(ev *Event, dec *Decision, start time.Time) {
	now := h.now()
	took := now.Sub(start)
	lvl := level(dec)
	if ev == nil {
		ev = &Event{}
	}
	e := h.log.WithLevel(lvl)
	if !e.Enabled() {
		if h.metrics != "" {
			h.emf(h.log.Log().Str("level", lvl.String()).Str("outcome", string(dec.Outcome)), dec, now, took).
				Msg("pre token generation")
		}
		return
	}
	e = e.Str("outcome", string(dec.Outcome)).
		Str("trigger_source", ev.TriggerSource).
		Str("event_version", string(ev.Version)).
		Str("client_id", ev.CallerContext.ClientID).
		Str("user_sub", ev.Request.UserAttributes["sub"]).
		Str("policy_version", dec.PolicyVersion).
		Str("cache", string(dec.Cache)).
		Int("roles", len(dec.Result.Roles)).
		Int("scopes_added", dec.ScopesAdded).
		Int("id_claims_added", dec.IDClaims).
		Int("access_claims_added", dec.AccessClaims).
		Int("id_token_bytes_added", dec.IDBytes).
		Int("access_token_bytes_added", dec.AccessBytes).
		Dur("duration_ms", took)
	if len(dec.Assigned) > 0 {
		e = e.Int("assigned_roles", len(dec.Assigned))
	}
	if dec.UserReads > 0 {
		e = e.Int("user_reads", dec.UserReads)
	}
	if dec.Tenant != "" {
		e = e.Str("tenant", userText(dec.Tenant))
	}
	if dec.Memberships > 0 {
		e = e.Int("memberships", dec.Memberships)
	}
	if dec.TenantRefused != "" {
		e = e.Str("tenant_refused", userText(dec.TenantRefused))
	}
	if len(dec.IdPIgnored) > 0 {
		e = e.Strs("idp_groups_ignored", dec.IdPIgnored)
	}
	if dec.Overflow {
		e = e.Bool("over_budget", true)
	}
	if dec.FailOpen {
		e = e.Bool("failure_mode_open", true)
	}
	if dec.Degraded {
		e = e.Bool("degraded", true)
	}
	if dec.Cache == permissions.CacheStale {
		e = e.Float64("stale_seconds", dec.StaleFor.Seconds())
	}
	if len(dec.Dropped) > 0 {
		e = e.Strs("dropped", dec.Dropped)
	}
	if dec.Problem != "" {
		e = e.Str("problem", dec.Problem)
	}
	if dec.Err != nil {
		e = e.Str("error", dec.Err.Error())
	}
	if h.metrics != "" {
		e = h.emf(e, dec, now, took)
	}
	e.Msg("pre token generation")
}

func level(dec *Decision) zerolog.Level {
	switch {
	case dec.Outcome == OutcomeInternal || len(dec.Dropped) > 0 || dec.Cache == permissions.CacheNone && dec.Problem != "":
		return zerolog.ErrorLevel
	case dec.Err != nil || dec.Overflow || dec.FailOpen || dec.Degraded:
		return zerolog.WarnLevel
	}
	return zerolog.InfoLevel
}

// maxUserText is the most characters of a user-written value that a log
// line carries.
const maxUserText = 64

// userText makes a value that a user may have written (a tenant id from an
// attribute) fit for the log line: at most maxUserText characters, the end
// cut and marked with "...", and escaped as a Go string literal would be
// (control and non-ASCII characters as \u escapes), so it can neither
// flood the line nor pass for something else in it.
func userText(s string) string {
	if utf8.RuneCountInString(s) > maxUserText {
		s = string([]rune(s)[:maxUserText-3]) + "..."
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}

// metric is one metric of the log line (CloudWatch "Specification:
// Embedded metric format"): its name, its unit, and its value for an
// invocation; ok false leaves it out of that line.
type metric struct {
	name, unit string
	value      func(s sample) (v float64, ok bool)
}

// sample is what the metrics read of a decision, and how long it took. It
// is a small value, so that the table's functions keep no decision alive.
type sample struct {
	outcome        Outcome
	cache          permissions.CacheState
	overflow       bool
	userReads      int
	staleFor, took time.Duration
}

// metrics are the metrics of each log line: one token by outcome, the
// cache state as five 0/1 counts, roles-only overflows, user-data reads,
// the handler's duration, and, while a stale snapshot is served, its age.
// Adding a metric is adding a line here.
var metrics = []metric{
	{"Tokens", "Count", func(sample) (float64, bool) { return 1, true }},
	{"CacheFresh", "Count", cacheIs(permissions.CacheFresh, CacheStatic)},
	{"CacheChecked", "Count", cacheIs(permissions.CacheChecked)},
	{"CacheLoaded", "Count", cacheIs(permissions.CacheLoaded)},
	{"CacheStale", "Count", cacheIs(permissions.CacheStale)},
	{"CacheNone", "Count", cacheIs(permissions.CacheNone)},
	{"RolesOnlyOverflows", "Count", func(s sample) (float64, bool) { return one(s.overflow && s.outcome == OutcomeIssued), true }},
	{"UserReads", "Count", func(s sample) (float64, bool) { return float64(s.userReads), true }},
	{"Duration", "Milliseconds", func(s sample) (float64, bool) { return float64(s.took.Microseconds()) / 1000, true }},
	{"StaleSeconds", "Seconds", func(s sample) (float64, bool) { return s.staleFor.Seconds(), s.cache == permissions.CacheStale }},
}

func cacheIs(states ...permissions.CacheState) func(sample) (float64, bool) {
	return func(s sample) (float64, bool) {
		for _, st := range states {
			if s.cache == st {
				return 1, true
			}
		}
		return 0, true
	}
}

func one(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

// emf adds the metrics to e: the _aws block that names them, the
// dimensions FunctionName and Outcome, and each metric as a member.
func (h *Handler) emf(e *zerolog.Event, dec *Decision, now time.Time, took time.Duration) *zerolog.Event {
	outcome := dec.Outcome
	if outcome == "" {
		outcome = OutcomeInternal
	}
	type value struct {
		name string
		v    float64
	}
	values := make([]value, 0, len(metrics))
	in := sample{outcome: dec.Outcome, cache: dec.Cache, overflow: dec.Overflow, userReads: dec.UserReads, staleFor: dec.StaleFor, took: took}
	var b strings.Builder
	fmt.Fprintf(&b, `{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"pretoken","Dimensions":[["FunctionName","Outcome"]],"Metrics":[`, now.UnixMilli())
	for _, m := range metrics {
		v, ok := m.value(in)
		if !ok {
			continue
		}
		if len(values) > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"Name":%q,"Unit":%q}`, m.name, m.unit)
		values = append(values, value{m.name, v})
	}
	b.WriteString(`]}]}`)
	e = e.RawJSON("_aws", []byte(b.String())).Str("FunctionName", h.metrics).Str("Outcome", string(outcome))
	for _, v := range values {
		e = e.Float64(v.name, v.v)
	}
	return e
}
