// Command trigger is the pretoken Lambda function: Amazon Cognito's pre token
// generation trigger. It is built as the binary "bootstrap" for the
// provided.al2023 runtime.
//
// Configuration comes from the environment (see the README):
//
//	PRETOKEN_TABLE              DynamoDB table holding the policy; or
//	PRETOKEN_POLICY_FILE        a policy to serve (for example one bundled in the zip): compiled (pretoken compile) or YAML
//	PRETOKEN_REFRESH_INTERVAL   how often the table's version is checked (default 10s)
//	PRETOKEN_MAX_STALENESS      how long a snapshot is served while DynamoDB fails (default 15m)
//	PRETOKEN_FAILURE_MODE       closed (default: refuse tokens) or open (issue them with nothing added) with no snapshot
//	PRETOKEN_USER_ASSIGNMENTS   true to add per-user role assignments (one read per token)
//	PRETOKEN_USER_READ_FAILURE  failure-mode (default) or roles-without-user, for a user read that fails with no recent copy
//	PRETOKEN_LOG_LEVEL          debug, info (default), warn or error
//
// AWS settings come from the environment, as Lambda passes them (AWS_REGION,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), and
// AWS_ENDPOINT_URL_DYNAMODB points the client at DynamoDB Local. The
// function does not load the SDK's whole configuration chain (profiles,
// SSO, IMDS): it cannot need them, and leaving them out of the binary
// shortens the cold start. The client and the first policy load happen at
// init. A bad setting stops the function at init with one log line, so a
// bad deployment fails before it serves a token.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
	"github.com/pretoken/pretoken/trigger"
)

func main() {
	gcBack := coldStartGC()
	log := zerolog.New(os.Stdout).With().Timestamp().Logger()
	h, err := setup(context.Background(), log, os.Getenv)
	if err != nil {
		log.Error().Str("error", err.Error()).Msg("pretoken cannot start")
		os.Exit(1)
	}
	lambda.StartHandler(&afterFirst{Handler: h, then: gcBack})
}

// afterFirst runs then once, when the first invocation has been answered:
// at the start of the second, as aws-lambda-go posts a response only after
// the handler returns (and Lambda may freeze the container in between).
type afterFirst struct {
	lambda.Handler
	then    func()
	invoked atomic.Bool
}

func (a *afterFirst) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if a.invoked.Swap(true) {
		a.then() // once: coldStartGC's restore
	}
	return a.Handler.Invoke(ctx, payload)
}

// config is the function's settings.
type config struct {
	table, policyFile string
	refresh, maxStale time.Duration
	mode              trigger.FailureMode
	assignments       bool
	level             zerolog.Level
	userFailure       trigger.UserReadFailure
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		table:      getenv("PRETOKEN_TABLE"),
		policyFile: getenv("PRETOKEN_POLICY_FILE"),
		refresh:    10 * time.Second,
		maxStale:   15 * time.Minute,
		level:      zerolog.InfoLevel,
	}
	var errs []error
	bad := func(name, want, got string) {
		errs = append(errs, fmt.Errorf("%s must be %s, not %q", name, want, got))
	}
	if c.table == "" && c.policyFile == "" {
		errs = append(errs, errors.New("set PRETOKEN_TABLE (a DynamoDB table) or PRETOKEN_POLICY_FILE (a policy file)"))
	}
	if c.table != "" && c.policyFile != "" {
		errs = append(errs, errors.New("set PRETOKEN_TABLE or PRETOKEN_POLICY_FILE, not both"))
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"PRETOKEN_REFRESH_INTERVAL", &c.refresh}, {"PRETOKEN_MAX_STALENESS", &c.maxStale}} {
		if s := getenv(d.name); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v <= 0 {
				bad(d.name, "a positive duration such as 10s or 15m", s)
				continue
			}
			*d.dst = v
		}
	}
	switch s := getenv("PRETOKEN_FAILURE_MODE"); s {
	case "", "closed":
	case "open":
		c.mode = trigger.FailOpen
	default:
		bad("PRETOKEN_FAILURE_MODE", "closed or open", s)
	}
	if s := getenv("PRETOKEN_USER_ASSIGNMENTS"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			bad("PRETOKEN_USER_ASSIGNMENTS", "true or false", s)
		}
		c.assignments = v
	}
	switch s := getenv("PRETOKEN_USER_READ_FAILURE"); s {
	case "", "failure-mode":
	case "roles-without-user":
		c.userFailure = trigger.RolesWithoutUser
	default:
		bad("PRETOKEN_USER_READ_FAILURE", "failure-mode or roles-without-user", s)
	}
	if c.assignments && c.table == "" {
		errs = append(errs, errors.New("PRETOKEN_USER_ASSIGNMENTS needs PRETOKEN_TABLE"))
	}
	if s := getenv("PRETOKEN_LOG_LEVEL"); s != "" {
		// Levels above error (fatal, panic, disabled) would silence the
		// security log: refused claims, store failures, failure-mode answers.
		l, err := zerolog.ParseLevel(s)
		if err != nil || l == zerolog.NoLevel || l > zerolog.ErrorLevel {
			bad("PRETOKEN_LOG_LEVEL", "trace, debug, info, warn or error (the error log cannot be turned off)", s)
		}
		c.level = l
	}
	return c, errors.Join(errs...)
}

// lambdaClient builds the DynamoDB client from what the Lambda environment
// provides: region and the execution role's credentials in variables.
func lambdaClient(getenv func(string) string) (*dynamodb.Client, error) {
	region, key, secret := getenv("AWS_REGION"), getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if region == "" || key == "" || secret == "" {
		return nil, errors.New("AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set (Lambda sets them)")
	}
	o := dynamodb.Options{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(key, secret, getenv("AWS_SESSION_TOKEN"))),
	}
	if u := getenv("AWS_ENDPOINT_URL_DYNAMODB"); u != "" {
		o.BaseEndpoint = aws.String(u)
		o.DisableValidateResponseChecksum = true // DynamoDB Local's error responses carry no checksum
	}
	return dynamodb.New(o), nil
}

// initLoadTimeout bounds the first policy load. Cognito's 5 s include the
// cold start: with a store that hangs, init gives up after this, the first
// token is answered at once by the failure mode, and the store is tried
// again a second later by one invocation only.
const initLoadTimeout = 2 * time.Second

// coldStartMemory is the heap up to which a cold start runs without the
// garbage collector: a 30,000-role snapshot's load allocates under 8 MiB
// (the response, the decompressed body, the lookup tables), most of it kept.
const coldStartMemory = 48 << 20

// coldStartGC turns the garbage collector off, up to coldStartMemory of
// heap, until the first token is answered, and returns what turns it back
// on (once, however often it is called). At 128 MB a function gets 7% of a CPU: a collection during the cold
// start (the client, the load, the first token), which frees little, costs
// that token about 30 ms.
func coldStartGC() (restore func()) {
	percent := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(coldStartMemory)
	var once sync.Once
	return func() {
		once.Do(func() {
			debug.SetMemoryLimit(limit)
			debug.SetGCPercent(percent)
		})
	}
}

// setup builds the handler from the environment.
func setup(ctx context.Context, log zerolog.Logger, getenv func(string) string) (*trigger.Handler, error) {
	c, err := loadConfig(getenv)
	if err != nil {
		return nil, err
	}
	log = log.Level(c.level)
	opts := []trigger.Option{trigger.WithFailureMode(c.mode)}
	if fn := getenv("AWS_LAMBDA_FUNCTION_NAME"); fn != "" { // in Lambda: metrics from the log line
		opts = append(opts, trigger.WithMetrics(fn))
	}
	if c.policyFile != "" {
		start := time.Now()
		snap, err := permissions.ServeFile(c.policyFile)
		if err != nil {
			return nil, err
		}
		if !snap.Tenancy().IsZero() {
			return nil, errors.New("the policy has tenancy, whose memberships live in a table: set PRETOKEN_TABLE")
		}
		log.Info().Str("policy_version", snap.Version()).Str("policy_file", c.policyFile).Dur("duration_ms", time.Since(start)).Msg("policy loaded")
		return trigger.New(trigger.Static{S: snap}, log, opts...), nil
	}

	client, err := lambdaClient(getenv)
	if err != nil {
		return nil, err
	}
	store := dynamo.New(client, c.table)
	cache := permissions.NewCache(store, permissions.CacheConfig{RefreshInterval: c.refresh, MaxStaleness: c.maxStale})
	// User data is read per token when the policy has tenancy, or with
	// direct assignments on; otherwise never.
	// A failed or throttled read serves the user's last answer, as the
	// snapshot is served stale.
	users := trigger.NewUserCache(store, trigger.UserCacheConfig{MaxStaleness: c.maxStale, Margin: store.DeadlineMargin})
	opts = append(opts, trigger.WithUsers(users, c.assignments), trigger.WithUserReadFailure(c.userFailure))
	// Load now, in the background, while the runtime starts: the first
	// token waits for this load only as long as it still runs. A failure is
	// not fatal: the cache retries, and until then the failure mode applies.
	lctx, cancel := context.WithTimeout(ctx, initLoadTimeout)
	start := time.Now()
	cache.Prime(lctx, func(snap *permissions.Snapshot, err error) {
		cancel()
		if err != nil {
			log.Error().Str("error", err.Error()).Str("table", c.table).Msg("initial policy load failed; will retry")
			return
		}
		log.Info().Str("policy_version", snap.Version()).Str("table", c.table).Dur("duration_ms", time.Since(start)).Msg("policy loaded")
	})
	return trigger.New(cache, log, opts...), nil
}
