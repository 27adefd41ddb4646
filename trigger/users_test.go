package trigger

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pretoken/pretoken/permissions"
)

// flakyUsers answers from users until down, then fails every read.
type flakyUsers struct {
	users map[string]permissions.User
	down  bool
}

var errThrottled = errors.New("ThrottlingException: rate exceeded")

func (f *flakyUsers) User(_ context.Context, sub string) (permissions.User, error) {
	if f.down {
		return permissions.User{}, errThrottled
	}
	return f.users[sub], nil
}

func TestUserCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	store := &flakyUsers{users: map[string]permissions.User{"a": {Roles: []string{"ra"}}, "b": {Roles: []string{"rb"}}, "c": {Roles: []string{"rc"}}}}
	c := NewUserCache(store, UserCacheConfig{MaxUsers: 2, MaxStaleness: time.Minute, Now: func() time.Time { return now }})
	ctx := context.Background()
	for _, sub := range []string{"a", "b", "c"} { // a is dropped: the least recently read
		if _, err := c.User(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	store.down = true
	now = now.Add(30 * time.Second)
	u, st, err := c.UserState(ctx, "c")
	if err != nil || !slices.Equal(u.Roles, []string{"rc"}) || !st.Stale || st.Age != 30*time.Second || st.Problem != errThrottled.Error() {
		t.Errorf("throttled, read 30s ago: %v, %+v, %v; want the last answer, stale, with the reason", u, st, err)
	}
	if _, _, err := c.UserState(ctx, "a"); !errors.Is(err, errThrottled) {
		t.Errorf("a user dropped by the bound: %v; want the read's error", err)
	}
	now = now.Add(31 * time.Second)
	if u, _, err := c.UserState(ctx, "c"); !errors.Is(err, errThrottled) || u.Roles != nil {
		t.Errorf("beyond the maximum staleness: %v, %v; want the read's error and nothing", u, err)
	}
}
