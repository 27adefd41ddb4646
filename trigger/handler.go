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

// Assignments gives the roles assigned to one user directly, outside groups.
type Assignments interface {
	// UserRoles returns the roles assigned to the user with this sub; none
	// is not an error. An error must never stand for "no roles".
	UserRoles(ctx context.Context, sub string) ([]string, error)
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
	assignments Assignments
	log         zerolog.Logger
	mode        FailureMode
	now         func() time.Time
}

// Option configures a Handler.
type Option func(*Handler)

// WithFailureMode sets what happens when the Source fails; FailClosed by default.
func WithFailureMode(m FailureMode) Option { return func(h *Handler) { h.mode = m } }

// WithAssignments makes every user's token also carry the roles that a
// holds for the user's sub: one lookup per token. Machine clients and events
// without a sub cost nothing extra.
func WithAssignments(a Assignments) Option { return func(h *Handler) { h.assignments = a } }

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
func (h *Handler) Invoke(ctx context.Context, payload []byte) (out []byte, err error) {
	start := h.now()
	ev, derr := DecodeEvent(payload)
	if derr != nil {
		h.log.Warn().Str("error", derr.Error()).Dur("duration_ms", h.now().Sub(start)).Msg("malformed event")
		return nil, ErrMalformed
	}
	reply, err := h.handle(ctx, ev, start)
	if err != nil {
		return nil, err
	}
	out, merr := json.Marshal(reply)
	if merr != nil {
		h.log.Error().Str("error", merr.Error()).Msg("encode response")
		return nil, ErrInternal
	}
	return out, nil
}

// Handle answers a decoded event.
func (h *Handler) Handle(ctx context.Context, ev *Event) (*Reply, error) {
	return h.handle(ctx, ev, h.now())
}

// stats is what one invocation's log line counts.
type stats struct {
	roles, scopes, idClaims, accessClaims int
	version                               string
	cache                                 permissions.CacheState
	assigned                              int
	overflow                              bool
}

func (h *Handler) handle(ctx context.Context, ev *Event, start time.Time) (reply *Reply, err error) {
	var st stats
	defer func() {
		if p := recover(); p != nil {
			h.log.Error().Str("panic", fmt.Sprint(p)).Msg("handler panic")
			reply, err = nil, ErrInternal
		}
		h.logInvocation(ev, st, start, err)
	}()
	v1, err := isV1(ev.Version)
	if err != nil {
		return nil, err
	}
	snap, state, serr := h.src.Snapshot(ctx)
	st.cache = state
	if serr != nil {
		return h.failed(ev, v1, &st, "no policy snapshot", serr)
	}
	st.version = snap.Version()
	var assigned []string
	if sub := ev.Request.UserAttributes["sub"]; h.assignments != nil && sub != "" && ev.TriggerSource != ClientCredentials {
		roles, err := h.assignments.UserRoles(ctx, sub)
		if err != nil {
			return h.failed(ev, v1, &st, "user role assignments unavailable", err)
		}
		assigned, st.assigned = roles, len(roles)
	}
	return h.respond(ev, v1, snap, assigned, &st)
}

// failed is the one place where a failure to read the policy becomes trigger
// behaviour: refuse the token (closed), or issue it unchanged (open).
// Either way it is logged; it is never treated as "no permissions".
func (h *Handler) failed(ev *Event, v1 bool, st *stats, what string, err error) (*Reply, error) {
	if h.mode == FailClosed {
		h.log.Error().Str("error", err.Error()).Msg(what + "; refusing the token (failure mode closed)")
		return nil, ErrUnavailable
	}
	h.log.Error().Str("error", err.Error()).Msg(what + "; issuing the token unchanged (failure mode open)")
	return h.respond(ev, v1, nil, nil, st)
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

func (h *Handler) respond(ev *Event, v1 bool, snap *permissions.Snapshot, assigned []string, st *stats) (*Reply, error) {
	machine := ev.TriggerSource == ClientCredentials
	reply := &Reply{Event: *ev}
	var groups *GroupConfiguration
	if !machine {
		groups = keepGroups(ev.Request.GroupConfiguration)
	}
	if snap == nil {
		reply.Response = emptyResponse(v1, groups)
		return reply, nil
	}
	sub := permissions.Subject{
		ClientID:   ev.CallerContext.ClientID,
		Machine:    machine,
		Attributes: ev.Request.UserAttributes,
		Roles:      assigned,
	}
	if !machine {
		sub.Groups = ev.Request.GroupConfiguration.GroupsToOverride
	}
	res := snap.Resolve(sub)
	st.roles = len(res.Roles)
	limits := snap.Limits()
	id, access := h.tokens(res, machine, false)
	if over(id, access, v1, limits.MaxTokenBytes) {
		st.overflow = true
		if limits.OnOverflow != permissions.OverflowRolesOnly {
			h.log.Warn().Int("max_token_bytes", limits.MaxTokenBytes).Msg("token over budget; refusing it (onOverflow fail)")
			return nil, ErrTooLarge
		}
		id, access = h.tokens(res, machine, true)
		if over(id, access, v1, limits.MaxTokenBytes) {
			h.log.Warn().Int("max_token_bytes", limits.MaxTokenBytes).Msg("token over budget even with roles only; refusing it")
			return nil, ErrTooLarge
		}
	}
	if v1 {
		reply.Response.ClaimsOverrideDetails = &ClaimsOverrideDetails{
			ClaimsToAddOrOverride: v1Claims(id.claims),
			ClaimsToSuppress:      id.suppress,
			GroupOverrideDetails:  groups,
		}
		st.idClaims = len(id.claims)
		return reply, nil
	}
	d := &ClaimsAndScopeOverrideDetails{GroupOverrideDetails: groups}
	if !machine { // client credentials issue no ID token
		d.IDTokenGeneration = v2Token(id)
		st.idClaims = len(id.claims)
	}
	d.AccessTokenGeneration = v2Token(access)
	st.accessClaims, st.scopes = len(access.claims), len(access.scopesToAdd)
	reply.Response.ClaimsAndScopeOverrideDetails = d
	return reply, nil
}

func emptyResponse(v1 bool, groups *GroupConfiguration) Response {
	if v1 {
		return Response{ClaimsOverrideDetails: &ClaimsOverrideDetails{GroupOverrideDetails: groups}}
	}
	return Response{ClaimsAndScopeOverrideDetails: &ClaimsAndScopeOverrideDetails{GroupOverrideDetails: groups}}
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

func (h *Handler) logInvocation(ev *Event, st stats, start time.Time, err error) {
	lvl := zerolog.InfoLevel
	if err != nil {
		lvl = zerolog.WarnLevel
	}
	e := h.log.WithLevel(lvl)
	if !e.Enabled() {
		return
	}
	e = e.Str("trigger_source", ev.TriggerSource).
		Str("event_version", string(ev.Version)).
		Str("client_id", ev.CallerContext.ClientID).
		Str("user_sub", ev.Request.UserAttributes["sub"]).
		Str("policy_version", st.version).
		Str("cache", string(st.cache)).
		Int("roles", st.roles).
		Int("scopes_added", st.scopes).
		Int("id_claims_added", st.idClaims).
		Int("access_claims_added", st.accessClaims).
		Dur("duration_ms", h.now().Sub(start))
	if st.assigned > 0 {
		e = e.Int("assigned_roles", st.assigned)
	}
	if st.overflow {
		e = e.Bool("over_budget", true)
	}
	if err != nil {
		e = e.Str("error", err.Error())
	}
	e.Msg("pre token generation")
}
