package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/internal/benchdata"
	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
	"github.com/pretoken/pretoken/trigger"
)

// table returns a migrated table holding p, and a client that reaches it
// through a counting proxy.
func table(b *testing.B, p *permissions.Policy) (string, *dynamodb.Client, *dynamotest.Proxy) {
	b.Helper()
	client := dynamotest.Client(b)
	name := dynamotest.Table(b, client)
	s := dynamo.New(client, name)
	s.CallTimeout = time.Minute
	if _, err := s.Apply(context.Background(), p, dynamo.ApplyOptions{Actor: "bench"}); err != nil {
		b.Fatal(err)
	}
	proxy := dynamotest.NewProxy(b, dynamotest.Endpoint(b))
	return name, dynamotest.NewClient(proxy.URL), proxy
}

func requests(p *dynamotest.Proxy) int {
	n := 0
	for _, c := range p.Counts() {
		n += c
	}
	return n
}

// baseline is the design pretoken replaces, as typical samples write it:
// on every invocation, one GetItem per group for that group's permissions.
type baseline struct {
	api   *dynamodb.Client
	table string
}

func (bl baseline) invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ev, err := trigger.DecodeEvent(payload)
	if err != nil {
		return nil, err
	}
	var perms []string
	for _, g := range ev.Request.GroupConfiguration.GroupsToOverride {
		out, err := bl.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &bl.table, Key: map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: "BASELINE"}, "SK": &types.AttributeValueMemberS{Value: "GROUP#" + g}}})
		if err != nil {
			return nil, err
		}
		var item struct {
			Permissions []string `dynamodbav:"permissions"`
		}
		if err := attributevalue.UnmarshalMap(out.Item, &item); err != nil {
			return nil, err
		}
		perms = append(perms, item.Permissions...)
	}
	slices.Sort(perms)
	perms = slices.Compact(perms)
	scopes := make([]string, len(perms))
	for i, p := range perms {
		scopes[i] = "api/" + p
	}
	reply := trigger.Reply{Event: *ev, Response: trigger.Response{ClaimsAndScopeOverrideDetails: &trigger.ClaimsAndScopeOverrideDetails{
		AccessTokenGeneration: &trigger.TokenGeneration{ScopesToAdd: scopes},
		GroupOverrideDetails:  &ev.Request.GroupConfiguration}}}
	return json.Marshal(reply)
}

// BenchmarkWarm compares a warm pretoken container with the baseline on the
// same DynamoDB Local: a V2 sign-in of a user in 5 groups, 100-role policy.
// ddb-req/1000inv counts DynamoDB requests per 1,000 invocations.
func BenchmarkWarm(b *testing.B) {
	p := benchdata.Policy(100)
	name, client, proxy := table(b, p)
	payload := benchdata.Event("2", 5)
	ctx := context.Background()
	b.Run("impl=pretoken", func(b *testing.B) {
		h := trigger.New(permissions.NewCache(dynamo.New(client, name), permissions.CacheConfig{}), zerolog.Nop())
		if _, err := h.Invoke(ctx, payload); err != nil { // the container's first load
			b.Fatal(err)
		}
		proxy.Counts()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Invoke(ctx, payload); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(requests(proxy))*1000/float64(b.N), "ddb-req/1000inv")
	})
	b.Run("impl=baseline", func(b *testing.B) {
		snap, err := permissions.Compile(p, "baseline")
		if err != nil {
			b.Fatal(err)
		}
		for g := range p.Groups {
			_, perms := snap.Expand(p.Groups[g])
			item, _ := attributevalue.MarshalMap(map[string]any{"PK": "BASELINE", "SK": "GROUP#" + g, "permissions": perms})
			if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &name, Item: item}); err != nil {
				b.Fatal(err)
			}
		}
		bl := baseline{api: client, table: name}
		proxy.Counts()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bl.invoke(ctx, payload); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(requests(proxy))*1000/float64(b.N), "ddb-req/1000inv")
	})
}

// BenchmarkColdStart starts a function under aws-lambda-rie and times the
// process start to its first response: pretoken with a 100-role policy in
// DynamoDB Local, and the minimal aws-lambda-go function, started the same
// way, each with a Lambda-like environment.
func BenchmarkColdStart(b *testing.B) {
	client := dynamotest.Client(b)
	name := dynamotest.Table(b, client)
	if _, err := dynamo.New(client, name).Apply(context.Background(), benchdata.Policy(100), dynamo.ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	env := map[string]string{"PRETOKEN_TABLE": name, "AWS_ENDPOINT_URL_DYNAMODB": dynamotest.Endpoint(b), "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_EC2_METADATA_DISABLED": "true", "PRETOKEN_POLICY_FILE": ""}
	payload := benchdata.Event("2", 5)
	pretoken, minimal := lambdatest.Build(b, "../cmd/trigger"), lambdatest.Build(b, "./minimal")
	first := func(bin string) time.Duration {
		f := lambdatest.StartIsolated(b, bin, env)
		ans := f.Invoke(b, payload)
		d := time.Since(f.Started)
		f.Stop()
		if ans.ErrorMessage != "" {
			b.Fatal(ans.ErrorMessage)
		}
		return d
	}
	// Interleaved: each iteration starts both, so both see the same machine.
	var p, m time.Duration
	for b.Loop() {
		p += first(pretoken)
		m += first(minimal)
	}
	n := float64(b.N)
	b.ReportMetric(float64(p.Microseconds())/1000/n, "pretoken-ms")
	b.ReportMetric(float64(m.Microseconds())/1000/n, "minimal-ms")
	b.ReportMetric(float64(p)/float64(m), "ratio")
}

// liveHeap is the heap in use after two collections (the second frees
// what sync.Pools kept through the first).
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// heldBy is the live heap that what load returns holds: the heap with it,
// less the heap once it is dropped (a difference around the load itself
// would count what the process sets up once, or frees meanwhile).
func heldBy(b *testing.B, load func() (any, error)) int64 {
	v, err := load()
	if err != nil {
		b.Fatal(err)
	}
	with := liveHeap()
	runtime.KeepAlive(v)
	v = nil
	return with - liveHeap()
}

// BenchmarkLoadCompile is a container's (re)load: the whole policy from
// DynamoDB Local, compiled. heap-MB is the live heap the snapshot holds.
func BenchmarkLoadCompile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("roles=%d", n), func(b *testing.B) {
			name, client, proxy := table(b, benchdata.Policy(n))
			store := dynamo.New(client, name)
			store.CallTimeout = time.Minute
			ctx := context.Background()
			held := heldBy(b, func() (any, error) {
				p, v, err := store.Load(ctx)
				if err != nil {
					return nil, err
				}
				return permissions.Compile(p, v)
			})
			proxy.Counts()
			for b.Loop() {
				p, v, err := store.Load(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := permissions.Compile(p, v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(requests(proxy))/float64(b.N), "requests/op")
			b.ReportMetric(float64(held)/(1<<20), "heap-MB")
		})
	}
}

// BenchmarkPropagation is the time from an apply to the first invocation
// that shows the change, in a warm container at the default refresh
// interval (10 s). Run it with -benchtime Nx: each op takes up to 10 s.
func BenchmarkPropagation(b *testing.B) {
	a, c := benchdata.Policy(10), benchdata.Policy(10)
	r := c.Roles["role0"]
	r.Permissions = append(r.Permissions, "changed:yes")
	c.Roles["role0"] = r
	name, client, _ := table(b, a)
	store := dynamo.New(dynamotest.Client(b), name)
	h := trigger.New(permissions.NewCache(dynamo.New(client, name), permissions.CacheConfig{}), zerolog.Nop())
	payload := benchdata.Event("2", 1)
	ctx := context.Background()
	has := func() bool {
		out, err := h.Invoke(ctx, payload)
		if err != nil {
			b.Fatal(err)
		}
		return strings.Contains(string(out), "changed:yes")
	}
	if has() {
		b.Fatal("change visible before it was applied")
	}
	var total time.Duration
	next := c
	for b.Loop() {
		if _, err := store.Apply(ctx, next, dynamo.ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		applied := time.Now()
		want := next == c
		for has() != want {
			if time.Since(applied) > time.Minute {
				b.Fatal(errors.New("change not visible after a minute"))
			}
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(applied)
		if next == c {
			next = a
		} else {
			next = c
		}
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/propagation")
}

// BenchmarkTenantToken is the per-token cost with tenancy: a warm container
// (policy in memory), a user with 1, 10 or 500 memberships in DynamoDB
// Local, the user's data read once per token. ddb-req/token counts the
// DynamoDB requests per token: one, whatever the memberships.
func BenchmarkTenantToken(b *testing.B) {
	p, err := permissions.ReadFile("../examples/tenants.yaml")
	if err != nil {
		b.Fatal(err)
	}
	// 500 tenant ids do not fit the default budget: the tenants claim is
	// the one dropped (roles-only), as a policy for such users would say.
	p.Limits.OnOverflow = permissions.OverflowRolesOnly
	name, client, proxy := table(b, p)
	direct := dynamo.New(dynamotest.Client(b), name)
	ctx := context.Background()
	for _, n := range []int{1, 10, 500} {
		b.Run(fmt.Sprintf("memberships=%d", n), func(b *testing.B) {
			sub := fmt.Sprintf("user-with-%d", n)
			for i := range n {
				if _, err := direct.AssignInTenant(ctx, sub, fmt.Sprintf("tenant-%03d", i), []string{"member"}, "bench"); err != nil {
					b.Fatal(err)
				}
			}
			if err := direct.SetActiveTenant(ctx, sub, "tenant-000", "bench"); err != nil {
				b.Fatal(err)
			}
			store := dynamo.New(client, name)
			h := trigger.New(permissions.NewCache(store, permissions.CacheConfig{RefreshInterval: time.Hour}), zerolog.Nop(), trigger.WithUsers(store, false))
			payload := []byte(`{"version":"2","triggerSource":"TokenGeneration_RefreshTokens","callerContext":{"clientId":"web"},` +
				`"request":{"userAttributes":{"sub":"` + sub + `"},"groupConfiguration":{"groupsToOverride":[]}}}`)
			if _, err := h.Invoke(ctx, payload); err != nil {
				b.Fatal(err)
			}
			proxy.Counts()
			b.ReportAllocs()
			for b.Loop() {
				out, err := h.Invoke(ctx, payload)
				if err != nil || !strings.Contains(string(out), `"tenant_id":"tenant-000"`) {
					b.Fatalf("%v: %s", err, out)
				}
			}
			b.ReportMetric(float64(requests(proxy))/float64(b.N), "ddb-req/token")
		})
	}
}

// BenchmarkLoadSnapshot is a container's (re)load from the compiled
// snapshot: the version item and the chunks from DynamoDB Local, decoded.
// heap-MB is the live heap the snapshot holds.
func BenchmarkLoadSnapshot(b *testing.B) {
	for _, n := range []int{1000, 10000, 30000} {
		b.Run(fmt.Sprintf("roles=%d", n), func(b *testing.B) {
			name, client, proxy := table(b, benchdata.Policy(n))
			store := dynamo.New(client, name)
			store.CallTimeout = time.Minute
			ctx := context.Background()
			held := heldBy(b, func() (any, error) { return store.LoadSnapshot(ctx) })
			proxy.Counts()
			for b.Loop() {
				if _, err := store.LoadSnapshot(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(requests(proxy))/float64(b.N), "requests/op")
			b.ReportMetric(float64(held)/(1<<20), "heap-MB")
		})
	}
}
