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
	"runtime/debug"
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
// metrics, with no PutMetricData call. See metrics in log.go.
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
	ev, err := DecodeEvent(payload)
	var dec Decision
	var out []byte
	if err != nil {
		dec = Decision{Outcome: OutcomeMalformed, Problem: err.Error(), Err: ErrMalformed}
	} else if dec = h.handle(ctx, ev); dec.Err == nil {
		if out, err = json.Marshal(dec.Reply); err != nil {
			dec.Outcome, dec.Problem, dec.Err = OutcomeInternal, "encode response: "+err.Error(), ErrInternal
			out = nil
		}
	}
	h.record(ev, &dec, start)
	return out, dec.Err
}

// Handle answers a decoded event.
func (h *Handler) Handle(ctx context.Context, ev *Event) (*Reply, error) {
	start := h.now()
	dec := h.handle(ctx, ev)
	h.record(ev, &dec, start)
	return dec.Reply, dec.Err
}

// Explanation is a token preview: the decision behind the trigger's answer
// to an event.
type Explanation = Decision

// Explain answers ev by the very path Handle takes (the snapshot, user
// assignments, Cognito's rules, the budget) and returns the decision, with
// the resolution behind the answer. It writes no log line. A refused token
// comes back as the error, with what was resolved before the refusal.
func (h *Handler) Explain(ctx context.Context, ev *Event) (Explanation, error) {
	dec := h.handle(ctx, ev)
	return dec, dec.Err
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

// Decision is what the trigger decided for one invocation, and why: the
// answer or the refusal, what the policy resolved, the tokens' sizes, the
// tenant, and what was dropped. Every path fills it in; record (log.go)
// turns it into the invocation's one log line and its metrics, and Explain
// returns it.
type Decision struct {
	// Reply is the answer to Cognito; nil when the token is refused.
	Reply *Reply
	// Err is the refusal shown to the user (one of the Err* values).
	Err error
	// Outcome is what became of the invocation; Problem what went wrong,
	// for operators, never shown to users.
	Outcome Outcome
	Problem string
	// PolicyVersion labels the snapshot that answered; Cache says how it
	// was obtained, and StaleFor its age when it was served stale.
	PolicyVersion string
	Cache         permissions.CacheState
	StaleFor      time.Duration
	// Result is the subject's roles, permissions and both tokens' changes
	// as the policy resolves them, before Cognito's rules and the budget.
	Result permissions.Result
	// Assigned are the user's directly assigned roles that were read.
	Assigned []string
	// UserReads counts the reads of the user's data; Memberships the
	// user's tenants.
	UserReads, Memberships int
	// Tenant is the token's active tenant; TenantRefused one that was asked
	// for but is not one of the user's memberships.
	Tenant, TenantRefused string
	// IdPIgnored says which identity-provider groups do not count, and why.
	IdPIgnored []string
	// IDBytes and AccessBytes are the estimated growth of each changed
	// token, which the budget (Limits.MaxTokenBytes) is checked against.
	IDBytes, AccessBytes int
	// ScopesAdded, IDClaims and AccessClaims count what the answer adds.
	ScopesAdded, IDClaims, AccessClaims int
	// Overflow: over budget (roles only, or refused). FailOpen: issued by
	// the failure mode, without the policy.
	Overflow, FailOpen bool
	// Degraded: issued without the user's data (roles-without-user).
	Degraded bool
	// Dropped is what the last line of defence removed, and why.
	Dropped []string
}

func (dec *Decision) drop(what string) { dec.Dropped = append(dec.Dropped, what) }

// handle decides what to answer to ev. The decision is a value, so that
// deciding allocates nothing for it.
func (h *Handler) handle(ctx context.Context, ev *Event) (dec Decision) {
	dec.Reply, dec.Err = h.decide(ctx, ev, &dec)
	return dec
}

func (h *Handler) decide(ctx context.Context, ev *Event, dec *Decision) (reply *Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			// The log line names where: its problem carries the stack.
			dec.Outcome, dec.Problem = OutcomeInternal, fmt.Sprint("panic: ", p, "\n", string(debug.Stack()))
			reply, err = nil, ErrInternal
		}
	}()
	v1, err := isV1(ev.Version)
	if err != nil {
		dec.Outcome, dec.Problem = OutcomeMalformed, "unsupported event version"
		return nil, err
	}
	snap, state, serr := h.src.Snapshot(ctx)
	dec.Cache = state
	if a, ok := h.src.(interface{ Age() time.Duration }); ok && state == permissions.CacheStale {
		dec.StaleFor = a.Age()
	}
	if p, ok := h.src.(interface{ Problem() error }); ok && state == permissions.CacheStale && p.Problem() != nil {
		dec.Problem = "stale policy: " + p.Problem().Error()
	}
	if serr != nil {
		return h.failed(ev, v1, dec, "no policy snapshot", serr)
	}
	dec.PolicyVersion = snap.Version()
	sub, ignored := h.subject(ev, snap)
	dec.IdPIgnored = ignored
	tenancy := snap.Tenancy()
	if id := ev.Request.UserAttributes["sub"]; h.users != nil && id != "" && !sub.Machine && (h.directRoles || !tenancy.IsZero()) {
		u, us, err := readUser(ctx, h.users, id)
		switch {
		case err != nil && h.userFailure != RolesWithoutUser:
			return h.failed(ev, v1, dec, "user data unavailable", err)
		case err != nil:
			dec.Problem, dec.Degraded = joinProblem(dec.Problem, "user data unavailable, issued from groups and defaults only: "+err.Error()), true
			return h.respond(ev, v1, snap, sub, dec)
		case us.Stale:
			dec.Cache, dec.StaleFor = permissions.CacheStale, max(dec.StaleFor, us.Age)
			dec.Problem = joinProblem(dec.Problem, "stale user data: "+us.Problem)
		}
		dec.UserReads++
		if h.directRoles {
			sub.Roles, dec.Assigned = u.Roles, u.Roles
		}
		if !tenancy.IsZero() {
			h.activeTenant(&sub, u, tenancy, ev, dec)
		}
	}
	return h.respond(ev, v1, snap, sub, dec)
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
func (h *Handler) failed(ev *Event, v1 bool, dec *Decision, what string, err error) (*Reply, error) {
	dec.Problem = what + ": " + err.Error()
	if h.mode == FailClosed {
		dec.Outcome = OutcomeUnavailable
		return nil, ErrUnavailable
	}
	dec.FailOpen = true
	var last *permissions.Snapshot
	if lk, ok := h.src.(LastKnown); ok {
		last = lk.Last()
	}
	return h.respondOpen(ev, v1, last, dec), nil
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
// ignored says which identity-provider attributes held groups that do not
// count (a native user, another provider), for the log line.
func (h *Handler) subject(ev *Event, snap *permissions.Snapshot) (_ permissions.Subject, ignored []string) {
	machine := ev.Machine()
	sub := permissions.Subject{
		ClientID:   ev.CallerContext.ClientID,
		Machine:    machine,
		Attributes: ev.Request.UserAttributes,
		Scopes:     ev.Request.Scopes,
	}
	if !machine {
		sub.Groups = ev.Request.GroupConfiguration.GroupsToOverride
		sub.IdPGroups, ignored = permissions.IdPGroupsOf(snap.IdPGroups(), ev.Request.UserAttributes)
	}
	return sub, ignored
}

// activeTenant works out the token's tenant: the stored one or the one in
// the policy's attribute; with neither, the only membership if there is
// one. Membership is checked on every token: a tenant the user is not (or
// no longer) a member of gives no tenant roles and no tenant claim, and the
// log line says so. Global roles apply either way.
func (h *Handler) activeTenant(sub *permissions.Subject, u permissions.User, t permissions.Tenancy, ev *Event, dec *Decision) {
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
	dec.Memberships = len(u.Memberships)
	if active == "" {
		return
	}
	roles, member := u.Memberships[active]
	if !member {
		dec.TenantRefused = active
		return
	}
	sub.Tenant, sub.TenantRoles, dec.Tenant = active, roles, active
}

func (h *Handler) respond(ev *Event, v1 bool, snap *permissions.Snapshot, sub permissions.Subject, dec *Decision) (*Reply, error) {
	res := snap.Resolve(sub)
	dec.Result = res
	limits := snap.Limits()
	// The budget applies to each token the answer changes: a V1 answer
	// changes only the ID token, a client-credentials answer only the
	// access token.
	changesID, changesAccess := !sub.Machine, !v1
	fits := func(id, access tokenOut) bool {
		dec.IDBytes, dec.AccessBytes = 0, 0
		if changesID {
			dec.IDBytes = growth(id, v1)
		}
		if changesAccess {
			dec.AccessBytes = growth(access, false)
		}
		return dec.IDBytes <= limits.MaxTokenBytes && dec.AccessBytes <= limits.MaxTokenBytes
	}
	id, access := h.tokens(res, sub.Machine, false, dec)
	if !fits(id, access) {
		dec.Overflow = true
		if limits.OnOverflow != permissions.OverflowRolesOnly {
			dec.Outcome, dec.Problem = OutcomeTooLarge, fmt.Sprintf("over the token budget of %d bytes (onOverflow fail)", limits.MaxTokenBytes)
			return nil, ErrTooLarge
		}
		id, access = h.tokens(res, sub.Machine, true, dec)
		if !fits(id, access) {
			dec.Outcome, dec.Problem = OutcomeTooLarge, fmt.Sprintf("over the token budget of %d bytes even with roles only", limits.MaxTokenBytes)
			return nil, ErrTooLarge
		}
	}
	dec.Outcome = OutcomeIssued
	return h.reply(ev, v1, id, access, dec), nil
}

// respondOpen is the failure mode open's answer: groups kept, nothing
// added, and the suppressions of the last known snapshot, if there is one.
func (h *Handler) respondOpen(ev *Event, v1 bool, last *permissions.Snapshot, dec *Decision) *Reply {
	dec.Outcome = OutcomeIssued
	var id, access tokenOut
	if last != nil {
		sub, _ := h.subject(ev, last)
		res := last.Resolve(sub)
		for _, c := range []*permissions.TokenChanges{&res.ID, &res.Access} {
			c.Claims, c.Unset, c.ScopesToAdd = nil, nil, nil
		}
		id, access = h.tokens(res, ev.Machine(), false, dec)
	} else {
		access.scopesToSuppress = unknownScopes(ev.Request.Scopes)
	}
	return h.reply(ev, v1, id, access, dec)
}

// unknownScopes are the requested scopes that a container which never
// loaded a policy suppresses when it issues a token open: every custom
// scope (a resource server's, identifier/name, which could mean a
// permission downstream) and the one that lets users change their own
// attributes. Without a policy nothing says which of them are granted.
func unknownScopes(requested []string) []string {
	var out []string
	for _, s := range requested {
		if strings.Contains(s, "/") || s == adminScope {
			out = append(out, s)
		}
	}
	return out
}

// reply shapes the two tokens' changes as the event version wants them.
func (h *Handler) reply(ev *Event, v1 bool, id, access tokenOut, dec *Decision) *Reply {
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
		dec.IDClaims = len(id.claims)
		return reply
	}
	d := &ClaimsAndScopeOverrideDetails{GroupOverrideDetails: groups}
	if !machine { // client credentials issue no ID token
		d.IDTokenGeneration = v2Token(id)
		dec.IDClaims = len(id.claims)
	}
	d.AccessTokenGeneration = v2Token(access)
	dec.AccessClaims, dec.ScopesAdded = len(access.claims), len(access.scopesToAdd)
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

// adminScope lets users read and change their own attributes.
const adminScope = "aws.cognito.signin.user.admin"
