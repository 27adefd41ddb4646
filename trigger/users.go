package trigger

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pretoken/pretoken/permissions"
)

// UserCache is Users for a Lambda container: it reads the store on every
// token, under a deadline of its own, and keeps the last answer for each
// user (the most recent MaxUsers users, least recently read dropped first).
// When a read fails or is throttled it serves the user's last answer, if no
// older than MaxStaleness, saying it is stale and why; with none, the
// error goes to the handler, whose failure settings decide. It degrades as
// the policy snapshot does, and never adds what the user did not have at
// the last successful read.
type UserCache struct {
	users Users
	cfg   UserCacheConfig

	mu      sync.Mutex
	order   *list.List // of *userEntry, most recently read first
	entries map[string]*list.Element
}

// UserCacheConfig tunes a UserCache; zero values take the defaults.
type UserCacheConfig struct {
	// MaxUsers bounds the users kept (default 10,000: a few MB).
	MaxUsers int
	// MaxStaleness is how old a user's last answer may be to be served
	// when the store fails (default 15 minutes: PRETOKEN_MAX_STALENESS).
	MaxStaleness time.Duration
	// Timeout is the read's own deadline (default and at most 500 ms), well
	// inside Cognito's 5 s, so a slow store leaves time for the answer.
	Timeout time.Duration
	// Margin is what the store keeps of a caller's deadline for itself
	// (dynamo.Store.DeadlineMargin): the context's deadline is Timeout plus
	// Margin, so the read itself gets the whole Timeout.
	Margin time.Duration
	Now    func() time.Time
}

type userEntry struct {
	sub    string
	user   permissions.User
	readAt time.Time
}

// UserState says how a UserCache answered.
type UserState struct {
	// Stale: the read failed and the user's last answer was served.
	Stale bool
	// Age is how old the served answer is; Problem the read's error.
	Age     time.Duration
	Problem string
}

// NewUserCache returns a UserCache over users.
func NewUserCache(users Users, cfg UserCacheConfig) *UserCache {
	if cfg.MaxUsers <= 0 {
		cfg.MaxUsers = 10000
	}
	if cfg.MaxStaleness <= 0 {
		cfg.MaxStaleness = 15 * time.Minute
	}
	if cfg.Timeout <= 0 || cfg.Timeout > 500*time.Millisecond {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &UserCache{users: users, cfg: cfg, order: list.New(), entries: map[string]*list.Element{}}
}

var _ Users = (*UserCache)(nil)

// User implements Users.
func (c *UserCache) User(ctx context.Context, sub string) (permissions.User, error) {
	u, _, err := c.UserState(ctx, sub)
	return u, err
}

// UserState reads the user; on failure it serves the last answer within
// MaxStaleness and says so.
func (c *UserCache) UserState(ctx context.Context, sub string) (permissions.User, UserState, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout+c.cfg.Margin)
	u, err := c.users.User(rctx, sub)
	cancel()
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.entries[sub]
	if err == nil {
		if el == nil {
			el = c.order.PushFront(&userEntry{sub: sub})
			c.entries[sub] = el
			if c.order.Len() > c.cfg.MaxUsers {
				last := c.order.Back()
				c.order.Remove(last)
				delete(c.entries, last.Value.(*userEntry).sub)
			}
		}
		c.order.MoveToFront(el)
		e := el.Value.(*userEntry)
		e.user, e.readAt = u, now
		return u, UserState{}, nil
	}
	if el == nil {
		return permissions.User{}, UserState{}, err
	}
	e := el.Value.(*userEntry)
	age := now.Sub(e.readAt)
	if age > c.cfg.MaxStaleness {
		return permissions.User{}, UserState{}, fmt.Errorf("%w (the last answer, %s old, is beyond the maximum staleness)", err, age.Round(time.Second))
	}
	c.order.MoveToFront(el)
	return e.user, UserState{Stale: true, Age: age, Problem: err.Error()}, nil
}

// UserReadFailure is what the handler does when a user's data cannot be
// read and no recent copy serves (PRETOKEN_USER_READ_FAILURE).
type UserReadFailure int

const (
	// UserReadFailureMode leaves it to the failure mode: closed refuses
	// the token, open issues it with nothing added. The default.
	UserReadFailureMode UserReadFailure = iota
	// RolesWithoutUser issues the token from the policy with groups and
	// default roles only: no direct roles, no tenant. It is never more than
	// the user has; the log line says degraded.
	RolesWithoutUser
)

// WithUserReadFailure sets what happens when a user's data cannot be read.
func WithUserReadFailure(f UserReadFailure) Option { return func(h *Handler) { h.userFailure = f } }

// readUser reads through a UserCache's state when users is one.
func readUser(ctx context.Context, users Users, sub string) (permissions.User, UserState, error) {
	if c, ok := users.(*UserCache); ok {
		return c.UserState(ctx, sub)
	}
	u, err := users.User(ctx, sub)
	return u, UserState{}, err
}

func joinProblem(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
