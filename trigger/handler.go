// Package trigger answers Amazon Cognito's pre token generation events
// (V1_0, V2_0 and V3_0) from a permissions.Snapshot. It owns Cognito's rules:
// which response shape each version takes, that the user's groups are kept,
// that reserved claims and malformed scopes are never emitted, the token
// size budget, and error messages that are safe to show to a user.
package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
)

// Source gives the snapshot to answer an invocation with.
// *permissions.Cache is one.
type Source interface {
	// Snapshot returns the current snapshot and how it was obtained (for
	// the log). An error means no usable snapshot exists; the handler then
	// follows its failure mode. It never stands for "no permissions".
	Snapshot(ctx context.Context) (*permissions.Snapshot, permissions.CacheState, error)
}

var _ Source = (*permissions.Cache)(nil)

// Static is a Source that always returns one snapshot, such as a policy
// file read at start-up.
type Static struct{ S *permissions.Snapshot }

// CacheStatic is the cache state logged for a Static source.
const CacheStatic permissions.CacheState = "static"

// Snapshot returns s.S.
func (s Static) Snapshot(context.Context) (*permissions.Snapshot, permissions.CacheState, error) {
	return s.S, CacheStatic, nil
}

// Users gives what the table holds about one user: directly assigned
// roles, roles per tenant, the stored active tenant. *dynamo.Store is one.
type Users interface {
	// User returns everything about the user with this sub in one request;
	// nothing stored is not an error. An error must never stand for "no
	// roles".
	User(ctx context.Context, sub string) (permissions.User, error)
}

// Errors the handler returns. Cognito shows the message to the user as
// "PreTokenGeneration failed with error <message>", so each is short and
// names nothing internal.
var (
	ErrMalformed   = safeError("malformed event")
	ErrVersion     = safeError("unsupported event version")
	ErrUnavailable = safeError("authorization is unavailable, try again later")
	ErrTooLarge    = safeError("token too large")
	ErrInternal    = safeError("internal error")
)

type safeError string

func (e safeError) Error() string { return string(e) }

// FailureMode is what the handler does when its Source has no snapshot.
type FailureMode int

// Failure modes.
const (
	// FailClosed refuses the token with ErrUnavailable.
	FailClosed FailureMode = iota
	// FailOpen issues the token as Cognito would without the trigger:
	// groups kept, nothing added.
	FailOpen
)

// Handler answers pre token generation events. It is safe for concurrent use.
type Handler struct {
	src         Source
	users       Users
	directRoles bool
	metrics     string // the function's name: the log line carries EMF metrics
	log         zerolog.Logger
	mode        FailureMode
	userFailure UserReadFailure
	now         func() time.Time
}

// Option configures a Handler.
type Option func(*Handler)

// WithFailureMode sets what happens when the Source fails; FailClosed by default.
func WithFailureMode(m FailureMode) Option { return func(h *Handler) { h.mode = m } }

// WithUsers makes the handler read each user's data from u: one request
// per user token, machine clients and events without a sub cost nothing. It
// reads when the policy has tenancy (memberships and the active tenant), or
// when directRoles is true (roles assigned to the user directly join the
// token; PRETOKEN_USER_ASSIGNMENTS).
func WithUsers(u Users, directRoles bool) Option {
	return func(h *Handler) { h.users, h.directRoles = u, directRoles }
}

// WithMetrics puts CloudWatch Embedded Metric Format into the one log line
// of each invocation, under namespace pretoken with the dimensions
// FunctionName (function) and Outcome: CloudWatch Logs turns the line into
// metrics, with no PutMetricData call. See logInvocation for the metrics.
func WithMetrics(function string) Option { return func(h *Handler) { h.metrics = function } }

// WithClock sets the clock used to time invocations.
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// New returns a Handler that answers from src and logs one line per invocation to log.
func New(src Source, log zerolog.Logger, opts ...Option) *Handler {
	h := &Handler{src: src, log: log, now: time.Now}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Invoke answers a raw event; it implements aws-lambda-go's lambda.Handler.
// Decoding here, rather than in aws-lambda-go, keeps decoder messages (which
// name Go types) away from users.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	start := h.now()
	st := &stats{}
	ev, err := DecodeEvent(payload)
	var out []byte
	if err != nil {
		st.outcome, st.problem = OutcomeMalformed, err.Error()
		err = ErrMalformed
	} else {
		var reply *Reply
		if reply, err = h.handle(ctx, ev, st); err == nil {
			if out, err = json.Marshal(reply); err != nil {
				st.outcome, st.problem = OutcomeInternal, "encode response: "+err.Error()
				out, err = nil, ErrInternal
			}
		}
	}
	h.logInvocation(ev, st, start, err)
	return out, err
}

// Handle answers a decoded event.
func (h *Handler) Handle(ctx context.Context, ev *Event) (*Reply, error) {
	start := h.now()
	st := &stats{}
	reply, err := h.handle(ctx, ev, st)
	h.logInvocation(ev, st, start, err)
	return reply, err
}

// Explanation is a token preview: the trigger's answer to an event and the
// resolution behind it.
type Explanation struct {
	Reply *Reply
	// Result is the subject's roles, permissions and both tokens' changes
	// as the policy resolves them, before Cognito's rules and the budget.
	Result permissions.Result
	// Assigned are the user's directly assigned roles that were read.
	Assigned []string
	// PolicyVersion labels the snapshot that answered.
	PolicyVersion string
	// IDBytes and AccessBytes are the estimated growth of each changed
	// token, which the budget (Limits.MaxTokenBytes) is checked against.
	IDBytes, AccessBytes int
	// Tenant is the token's active tenant; TenantRefused one that was asked
	// for but is not one of the user's memberships.
	Tenant, TenantRefused string
}

// Explain answers ev by the very path Handle takes (the snapshot, user
// assignments, Cognito's rules, the budget) and returns the resolution
// behind the answer too. It writes no log line. A refused token comes back
// as the error, with what was resolved before the refusal.
func (h *Handler) Explain(ctx context.Context, ev *Event) (Explanation, error) {
	st := &stats{}
	reply, err := h.handle(ctx, ev, st)
	return Explanation{Reply: reply, Result: st.res, Assigned: st.assignedRoles, PolicyVersion: st.version,
		IDBytes: st.idBytes, AccessBytes: st.accessBytes, Tenant: st.tenant, TenantRefused: st.tenantRefused}, err
}

// Outcome is what became of one invocation, for the log line.
type Outcome string

// Outcomes.
const (
	OutcomeIssued      Outcome = "issued"      // answered: the token is issued (perhaps unchanged, by the failure mode)
	OutcomeUnavailable Outcome = "unavailable" // refused: no policy to answer with (failure mode closed)
	OutcomeTooLarge    Outcome = "too_large"   // refused: over the token budget
	OutcomeMalformed   Outcome = "malformed"   // refused: not a pre token generation event, or an unknown version
	OutcomeInternal    Outcome = "internal"    // refused: a bug (a panic, an answer that did not encode)
)

// stats is what one invocation's log line says. Every path fills it in and
// the one writer, logInvocation, writes it: one line per invocation.
type stats struct {
	outcome                               Outcome
	roles, scopes, idClaims, accessClaims int
	idBytes, accessBytes                  int // the tokens' estimated growth
	version                               string
	cache                                 permissions.CacheState
	assigned                              int
	overflow                              bool     // over budget: roles only, or refused
	failOpen                              bool     // issued by the failure mode, without the policy
	problem                               string   // what went wrong, for operators; never shown to users
	dropped                               []string // what the last line of defence removed
	res                                   permissions.Result
	assignedRoles                         []string
	userReads, memberships                int
	tenant, tenantRefused                 string
	staleFor                              time.Duration
	degraded                              bool // issued without the user's data (roles-without-user)
}

func (st *stats) drop(what string) { st.dropped = append(st.dropped, what) }

func (h *Handler) handle(ctx context.Context, ev *Event, st *stats) (reply *Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			st.outcome, st.problem = OutcomeInternal, fmt.Sprint("panic: ", p)
			reply, err = nil, ErrInternal
		}
	}()
	v1, err := isV1(ev.Version)
	if err != nil {
		st.outcome, st.problem = OutcomeMalformed, "unsupported event version"
		return nil, err
	}
	snap, state, serr := h.src.Snapshot(ctx)
	st.cache = state
	if a, ok := h.src.(interface{ Age() time.Duration }); ok && state == permissions.CacheStale {
		st.staleFor = a.Age()
	}
	if p, ok := h.src.(interface{ Problem() error }); ok && state == permissions.CacheStale && p.Problem() != nil {
		st.problem = "stale policy: " + p.Problem().Error()
	}
	if serr != nil {
		return h.failed(ev, v1, st, "no policy snapshot", serr)
	}
	st.version = snap.Version()
	sub := h.subject(ev, snap)
	tenancy := snap.Tenancy()
	if id := ev.Request.UserAttributes["sub"]; h.users != nil && id != "" && !sub.Machine && (h.directRoles || !tenancy.IsZero()) {
		u, us, err := readUser(ctx, h.users, id)
		switch {
		case err != nil && h.userFailure != RolesWithoutUser:
			return h.failed(ev, v1, st, "user data unavailable", err)
		case err != nil:
			st.problem, st.degraded = joinProblem(st.problem, "user data unavailable, issued from groups and defaults only: "+err.Error()), true
			return h.respond(ev, v1, snap, sub, st)
		case us.Stale:
			st.cache, st.staleFor = permissions.CacheStale, max(st.staleFor, us.Age)
			st.problem = joinProblem(st.problem, "stale user data: "+us.Problem)
		}
		st.userReads++
		if h.directRoles {
			sub.Roles, st.assigned, st.assignedRoles = u.Roles, len(u.Roles), u.Roles
		}
		if !tenancy.IsZero() {
			h.activeTenant(&sub, u, tenancy, ev, st)
		}
	}
	return h.respond(ev, v1, snap, sub, st)
}

// LastKnown is implemented by a Source that can still name its last
// snapshot when it may no longer serve it (*permissions.Cache beyond the
// maximum staleness). The failure mode open takes that snapshot's
// suppressions from it, so an outage never hands out a scope or claim that
// the policy removes.
type LastKnown interface {
	Last() *permissions.Snapshot
}

// failed is the one place where a failure to read the policy becomes trigger
// behaviour: refuse the token (closed), or issue it without additions (open).
// Either way it is logged; it is never treated as "no permissions".
func (h *Handler) failed(ev *Event, v1 bool, st *stats, what string, err error) (*Reply, error) {
	st.problem = what + ": " + err.Error()
	if h.mode == FailClosed {
		st.outcome = OutcomeUnavailable
		return nil, ErrUnavailable
	}
	st.failOpen = true
	var last *permissions.Snapshot
	if lk, ok := h.src.(LastKnown); ok {
		last = lk.Last()
	}
	return h.respondOpen(ev, v1, last, st), nil
}

// isV1 tells the V1_0 shape from the V2_0/V3_0 shape.
func isV1(v Version) (bool, error) {
	switch v {
	case "0", "1":
		return true, nil
	case "2", "3":
		return false, nil
	}
	return false, ErrVersion
}

// ClientCredentials is the trigger source of a machine-to-machine token.
const ClientCredentials = "TokenGeneration_ClientCredentials"

// Machine reports whether the event is a machine client's token (client
// credentials): no user, no groups, no ID token.
func (e *Event) Machine() bool { return e.TriggerSource == ClientCredentials }

// subject is who the event is for, as far as the event says: the client,
// the user's Cognito groups and attributes, and the identity provider's
// groups from the attribute the policy names.
func (h *Handler) subject(ev *Event, snap *permissions.Snapshot) permissions.Subject {
	machine := ev.Machine()
	sub := permissions.Subject{
		ClientID:   ev.CallerContext.ClientID,
		Machine:    machine,
		Attributes: ev.Request.UserAttributes,
	}
	if !machine {
		sub.Groups = ev.Request.GroupConfiguration.GroupsToOverride
		if attr := snap.IdPGroupsAttribute(); attr != "" {
			sub.IdPGroups = permissions.ParseIdPGroups(ev.Request.UserAttributes[attr])
		}
	}
	return sub
}

// activeTenant works out the token's tenant: the stored one or the one in
// the policy's attribute; with neither, the only membership if there is
// one. Membership is checked on every token: a tenant the user is not (or
// no longer) a member of gives no tenant roles and no tenant claim, and the
// log line says so. Global roles apply either way.
func (h *Handler) activeTenant(sub *permissions.Subject, u permissions.User, t permissions.Tenancy, ev *Event, st *stats) {
	active := u.Active
	if attr, ok := strings.CutPrefix(t.Active, permissions.SourceAttribute); ok {
		active = ev.Request.UserAttributes[attr]
	}
	if active == "" && len(u.Memberships) == 1 {
		for only := range u.Memberships {
			active = only
		}
	}
	sub.Tenants = slices.Sorted(maps.Keys(u.Memberships))
	st.memberships = len(u.Memberships)
	if active == "" {
		return
	}
	roles, member := u.Memberships[active]
	if !member {
		st.tenantRefused = active
		return
	}
	sub.Tenant, sub.TenantRoles, st.tenant = active, roles, active
}

func (h *Handler) respond(ev *Event, v1 bool, snap *permissions.Snapshot, sub permissions.Subject, st *stats) (*Reply, error) {
	res := snap.Resolve(sub)
	st.roles, st.res = len(res.Roles), res
	limits := snap.Limits()
	// The budget applies to each token the answer changes: a V1 answer
	// changes only the ID token, a client-credentials answer only the
	// access token.
	changesID, changesAccess := !sub.Machine, !v1
	fits := func(id, access tokenOut) bool {
		st.idBytes, st.accessBytes = 0, 0
		if changesID {
			st.idBytes = growth(id, v1)
		}
		if changesAccess {
			st.accessBytes = growth(access, false)
		}
		return st.idBytes <= limits.MaxTokenBytes && st.accessBytes <= limits.MaxTokenBytes
	}
	id, access := h.tokens(res, sub.Machine, false, st)
	if !fits(id, access) {
		st.overflow = true
		if limits.OnOverflow != permissions.OverflowRolesOnly {
			st.outcome, st.problem = OutcomeTooLarge, fmt.Sprintf("over the token budget of %d bytes (onOverflow fail)", limits.MaxTokenBytes)
			return nil, ErrTooLarge
		}
		id, access = h.tokens(res, sub.Machine, true, st)
		if !fits(id, access) {
			st.outcome, st.problem = OutcomeTooLarge, fmt.Sprintf("over the token budget of %d bytes even with roles only", limits.MaxTokenBytes)
			return nil, ErrTooLarge
		}
	}
	st.outcome = OutcomeIssued
	return h.reply(ev, v1, id, access, st), nil
}

// respondOpen is the failure mode open's answer: groups kept, nothing
// added, and the suppressions of the last known snapshot, if there is one.
func (h *Handler) respondOpen(ev *Event, v1 bool, last *permissions.Snapshot, st *stats) *Reply {
	st.outcome = OutcomeIssued
	var id, access tokenOut
	if last != nil {
		res := last.Resolve(h.subject(ev, last))
		id, access = h.tokens(res, ev.Machine(), true, st)
		id.claims, access.claims, id.scopesToAdd, access.scopesToAdd = nil, nil, nil, nil
	}
	return h.reply(ev, v1, id, access, st)
}

// reply shapes the two tokens' changes as the event version wants them.
func (h *Handler) reply(ev *Event, v1 bool, id, access tokenOut, st *stats) *Reply {
	machine := ev.Machine()
	reply := &Reply{Event: *ev}
	var groups *GroupConfiguration
	if !machine {
		groups = keepGroups(ev.Request.GroupConfiguration)
	}
	if v1 {
		reply.Response.ClaimsOverrideDetails = &ClaimsOverrideDetails{
			ClaimsToAddOrOverride: v1Claims(id.claims),
			ClaimsToSuppress:      id.suppress,
			GroupOverrideDetails:  groups,
		}
		st.idClaims = len(id.claims)
		return reply
	}
	d := &ClaimsAndScopeOverrideDetails{GroupOverrideDetails: groups}
	if !machine { // client credentials issue no ID token
		d.IDTokenGeneration = v2Token(id)
		st.idClaims = len(id.claims)
	}
	d.AccessTokenGeneration = v2Token(access)
	st.accessClaims, st.scopes = len(access.claims), len(access.scopesToAdd)
	reply.Response.ClaimsAndScopeOverrideDetails = d
	return reply
}

// keepGroups returns the group override that leaves the user's groups as
// they are. An empty or null override would remove them all.
func keepGroups(gc GroupConfiguration) *GroupConfiguration {
	out := gc
	if out.GroupsToOverride == nil {
		out.GroupsToOverride = []string{}
	}
	if out.IAMRolesToOverride == nil {
		out.IAMRolesToOverride = []string{}
	}
	return &out
}

// logInvocation writes the invocation's one log line: info when a token was
// issued as the policy says, warn when it was refused or degraded (over
// budget, failure mode), error when something that should never happen
// did (a store failure, a panic, a reserved claim or scope reaching the
// trigger).
func (h *Handler) logInvocation(ev *Event, st *stats, start time.Time, err error) {
	lvl := zerolog.InfoLevel
	switch {
	case st.outcome == OutcomeInternal || len(st.dropped) > 0 || st.cache == permissions.CacheNone && st.problem != "":
		lvl = zerolog.ErrorLevel
	case err != nil || st.overflow || st.failOpen || st.degraded:
		lvl = zerolog.WarnLevel
	}
	e := h.log.WithLevel(lvl)
	if !e.Enabled() {
		return
	}
	if ev == nil {
		ev = &Event{}
	}
	e = e.Str("outcome", string(st.outcome)).
		Str("trigger_source", ev.TriggerSource).
		Str("event_version", string(ev.Version)).
		Str("client_id", ev.CallerContext.ClientID).
		Str("user_sub", ev.Request.UserAttributes["sub"]).
		Str("policy_version", st.version).
		Str("cache", string(st.cache)).
		Int("roles", st.roles).
		Int("scopes_added", st.scopes).
		Int("id_claims_added", st.idClaims).
		Int("access_claims_added", st.accessClaims).
		Int("id_token_bytes_added", st.idBytes).
		Int("access_token_bytes_added", st.accessBytes).
		Dur("duration_ms", h.now().Sub(start))
	if st.assigned > 0 {
		e = e.Int("assigned_roles", st.assigned)
	}
	if st.userReads > 0 {
		e = e.Int("user_reads", st.userReads)
	}
	if st.tenant != "" {
		e = e.Str("tenant", st.tenant)
	}
	if st.memberships > 0 {
		e = e.Int("memberships", st.memberships)
	}
	if st.tenantRefused != "" {
		e = e.Str("tenant_refused", st.tenantRefused)
	}
	if st.overflow {
		e = e.Bool("over_budget", true)
	}
	if st.failOpen {
		e = e.Bool("failure_mode_open", true)
	}
	if st.degraded {
		e = e.Bool("degraded", true)
	}
	if st.cache == permissions.CacheStale {
		e = e.Float64("stale_seconds", st.staleFor.Seconds())
	}
	if len(st.dropped) > 0 {
		e = e.Strs("dropped", st.dropped)
	}
	if st.problem != "" {
		e = e.Str("problem", st.problem)
	}
	if err != nil {
		e = e.Str("error", err.Error())
	}
	if h.metrics != "" {
		e = h.emf(e, st, h.now().Sub(start))
	}
	e.Msg("pre token generation")
}

// emfMetrics are the metrics of each log line (CloudWatch "Specification:
// Embedded metric format"): one token by outcome, the cache state as five
// 0/1 counts, roles-only overflows, user-data reads, the handler's duration,
// and, while a stale snapshot is served, its age.
var emfMetrics = []struct{ name, unit string }{
	{"Tokens", "Count"}, {"CacheFresh", "Count"}, {"CacheChecked", "Count"}, {"CacheLoaded", "Count"},
	{"CacheStale", "Count"}, {"CacheNone", "Count"}, {"RolesOnlyOverflows", "Count"}, {"UserReads", "Count"},
	{"Duration", "Milliseconds"},
}

func (h *Handler) emf(e *zerolog.Event, st *stats, d time.Duration) *zerolog.Event {
	outcome := st.outcome
	if outcome == "" {
		outcome = OutcomeInternal
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"pretoken","Dimensions":[["FunctionName","Outcome"]],"Metrics":[`, h.now().UnixMilli())
	for i, m := range emfMetrics {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"Name":%q,"Unit":%q}`, m.name, m.unit)
	}
	if st.cache == permissions.CacheStale {
		b.WriteString(`,{"Name":"StaleSeconds","Unit":"Seconds"}`)
	}
	b.WriteString(`]}]}`)
	one := func(ok bool) int {
		if ok {
			return 1
		}
		return 0
	}
	e = e.RawJSON("_aws", []byte(b.String())).Str("FunctionName", h.metrics).Str("Outcome", string(outcome)).
		Int("Tokens", 1).
		Int("CacheFresh", one(st.cache == permissions.CacheFresh || st.cache == CacheStatic)).
		Int("CacheChecked", one(st.cache == permissions.CacheChecked)).
		Int("CacheLoaded", one(st.cache == permissions.CacheLoaded)).
		Int("CacheStale", one(st.cache == permissions.CacheStale)).
		Int("CacheNone", one(st.cache == permissions.CacheNone)).
		Int("RolesOnlyOverflows", one(st.overflow && outcome == OutcomeIssued)).
		Int("UserReads", st.userReads).
		Float64("Duration", float64(d.Microseconds())/1000)
	if st.cache == permissions.CacheStale {
		e = e.Float64("StaleSeconds", st.staleFor.Seconds())
	}
	return e
}
