package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// poolFlag names the user pool that sign-out works on.
type poolFlag struct {
	UserPoolID string `name:"user-pool-id" env:"PRETOKEN_USER_POOL_ID" placeholder:"ID" help:"The user pool (REGION_ID)."`
}

// signOutAPI is the part of the Cognito API sign-out needs.
type signOutAPI interface {
	AdminUserGlobalSignOut(context.Context, *cip.AdminUserGlobalSignOutInput, ...func(*cip.Options)) (*cip.AdminUserGlobalSignOutOutput, error)
	ListUsersInGroup(context.Context, *cip.ListUsersInGroupInput, ...func(*cip.Options)) (*cip.ListUsersInGroupOutput, error)
	ListUsers(context.Context, *cip.ListUsersInput, ...func(*cip.Options)) (*cip.ListUsersOutput, error)
}

func (f poolFlag) client(ctx context.Context, e *env) (signOutAPI, error) {
	cfg, err := f.config(ctx, e)
	if err != nil {
		return nil, err
	}
	return cip.NewFromConfig(cfg), nil
}

// config is the AWS configuration for the pool's region.
func (f poolFlag) config(ctx context.Context, e *env) (aws.Config, error) {
	if f.UserPoolID == "" {
		return aws.Config{}, usagef("name the user pool with --user-pool-id or PRETOKEN_USER_POOL_ID")
	}
	region, _, ok := strings.Cut(f.UserPoolID, "_")
	if !ok {
		return aws.Config{}, usagef("%q is not a user pool id (REGION_ID)", f.UserPoolID)
	}
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		os.Setenv("AWS_REGION", region) // the pool id names its region
	}
	return awsConfig(ctx, e)
}

// errNoSuchUser: no user has the sub (or username) given.
var errNoSuchUser = errors.New("no such user")

// sub is the shape of a Cognito sub (a UUID).
var sub = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// username finds the username of the user with sub user: a federated
// user's is "<provider>_<id>", and AdminUserGlobalSignOut takes a sub only
// for local users. An argument that is not a sub and matches no sub is
// taken for a username.
func username(ctx context.Context, api signOutAPI, pool, user string) (string, error) {
	if strings.ContainsAny(user, `"\`) {
		return user, nil // no sub has these; the filter could not quote it
	}
	out, err := api.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: &pool, Filter: aws.String(`sub = "` + user + `"`), Limit: aws.Int32(2)})
	if err != nil {
		return "", fmt.Errorf("look up user %s: %w", user, err)
	}
	switch {
	case len(out.Users) == 1:
		return aws.ToString(out.Users[0].Username), nil
	case len(out.Users) > 1:
		return "", fmt.Errorf("look up user %s: more than one user has this sub", user)
	case sub.MatchString(user):
		return "", fmt.Errorf("%w: no user in pool %s has sub %s", errNoSuchUser, pool, user)
	}
	return user, nil
}

// signOut revokes the refresh tokens of one user, by sub (or username).
func signOut(ctx context.Context, api signOutAPI, pool, user string) error {
	name, err := username(ctx, api, pool, user)
	if err != nil {
		return err
	}
	return signOutName(ctx, api, pool, name)
}

// signOutName signs out the user with username name.
func signOutName(ctx context.Context, api signOutAPI, pool, name string) error {
	_, err := api.AdminUserGlobalSignOut(ctx, &cip.AdminUserGlobalSignOutInput{UserPoolId: &pool, Username: &name})
	var missing *types.UserNotFoundException
	if errors.As(err, &missing) {
		return fmt.Errorf("%w: no user %s in pool %s", errNoSuchUser, name, pool)
	}
	if err != nil {
		return fmt.Errorf("sign out %s: %w", name, err)
	}
	return nil
}

type signOutCmd struct {
	poolFlag
	Users  []string `arg:"" optional:"" name:"sub" help:"Users to sign out, by sub (a federated user's username is looked up; a username works too)."`
	Group  string   `placeholder:"G" help:"Sign out every member of group G, page by page, resumable."`
	Rate   float64  `default:"5" help:"Sign-outs per second at most (Cognito's default quota for AdminUserGlobalSignOut is higher; stay below it)."`
	Resume string   `placeholder:"FILE" help:"With --group: where progress is kept, so an interrupted run continues (default: .pretoken-signout-<pool>-<group>.json)."`
}

func (c *signOutCmd) Run(e *env) error {
	if (len(c.Users) == 0) == (c.Group == "") {
		return usagef("name the users to sign out, or --group G (not both)")
	}
	if c.Rate <= 0 {
		return usagef("--rate must be positive")
	}
	ctx := context.Background()
	api, err := c.client(ctx, e)
	if err != nil {
		return err
	}
	if c.Group == "" {
		return signOutEach(ctx, e, api, c.UserPoolID, c.Users)
	}
	return c.group(ctx, e, api)
}

// signOutEach signs users out one after another, saying so for each; it
// stops at the first failure.
func signOutEach(ctx context.Context, e *env, api signOutAPI, pool string, users []string) error {
	for _, u := range users {
		if err := signOut(ctx, api, pool, u); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "signed out %s: refresh tokens revoked; tokens already issued stay valid until they expire, and a managed-login session for up to an hour\n", u)
	}
	return nil
}

// progress is what a group sign-out keeps between runs.
type progress struct {
	Pool, Group string
	NextToken   string // of the page being done; "" for the first
	Skip        int    // members of that page already signed out
	Done        int
}

func (c *signOutCmd) group(ctx context.Context, e *env, api signOutAPI) error {
	file := c.Resume
	if file == "" {
		file = fmt.Sprintf(".pretoken-signout-%s-%s.json", c.UserPoolID, strings.NewReplacer("/", "_", " ", "_").Replace(c.Group))
	}
	p := progress{Pool: c.UserPoolID, Group: c.Group}
	if b, err := os.ReadFile(file); err == nil {
		if err := json.Unmarshal(b, &p); err != nil || p.Pool != c.UserPoolID || p.Group != c.Group {
			return fmt.Errorf("%s holds another run's progress; remove it or name another --resume file", file)
		}
		fmt.Fprintf(e.stdout, "resuming from %s: %d already signed out\n", file, p.Done)
	}
	save := func() error {
		b, _ := json.Marshal(p)
		return os.WriteFile(file, b, 0o600)
	}
	pace := time.Duration(float64(time.Second) / c.Rate)
	next := time.Now()
	for {
		in := &cip.ListUsersInGroupInput{UserPoolId: &c.UserPoolID, GroupName: &c.Group, Limit: aws.Int32(60)}
		if p.NextToken != "" {
			in.NextToken = aws.String(p.NextToken)
		}
		page, err := api.ListUsersInGroup(ctx, in)
		if err != nil {
			return errors.Join(fmt.Errorf("list the members of %s: %w", c.Group, err), save())
		}
		for i, u := range page.Users {
			if i < p.Skip {
				continue // signed out before the interruption
			}
			time.Sleep(time.Until(next)) // paced below Cognito's quota
			next = time.Now().Add(pace)
			if err := signOutName(ctx, api, c.UserPoolID, aws.ToString(u.Username)); err != nil {
				if serr := save(); serr != nil {
					return errors.Join(err, serr)
				}
				fmt.Fprintf(e.stderr, "pretoken signout: %d signed out so far; progress kept in %s: run the same command to continue\n", p.Done, file)
				return err
			}
			p.Done++
			p.Skip = i + 1
			if e.terminal {
				fmt.Fprintf(e.stdout, "\rsigned out %d member(s) of %s", p.Done, c.Group)
			}
		}
		p.NextToken, p.Skip = aws.ToString(page.NextToken), 0
		if p.NextToken == "" {
			break
		}
		if err := save(); err != nil {
			return err
		}
	}
	os.Remove(file)
	if e.terminal {
		fmt.Fprintln(e.stdout)
	}
	fmt.Fprintf(e.stdout, "signed out %d member(s) of group %s: refresh tokens revoked; tokens already issued stay valid until they expire, and a managed-login session for up to an hour\n", p.Done, c.Group)
	return nil
}
