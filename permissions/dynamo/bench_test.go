package dynamo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// BenchmarkLoadAndCompile is what a container does on a policy change: load
// the whole policy from DynamoDB Local and compile it. requests/op counts
// the DynamoDB requests one load makes.
func BenchmarkLoadAndCompile(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("roles=%d", n), func(b *testing.B) {
			client := dynamotest.Client(b)
			table := dynamotest.Table(b, client)
			if _, err := dynamo.New(client, table).Apply(context.Background(), bigPolicy(n, "p"), dynamo.ApplyOptions{}); err != nil {
				b.Fatal(err)
			}
			proxy := lambdatest.NewProxy(b, dynamotest.Endpoint(b))
			store := dynamo.New(dynamotest.NewClient(proxy.URL), table)
			proxy.Counts()
			b.ReportAllocs()
			for b.Loop() {
				p, v, err := store.Load(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := permissions.Compile(p, v); err != nil {
					b.Fatal(err)
				}
			}
			total := 0
			for _, c := range proxy.Counts() {
				total += c
			}
			b.ReportMetric(float64(total)/float64(b.N), "requests/op")
		})
	}
}
