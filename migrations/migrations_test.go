package migrations_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/migrations"
)

func TestOrdered(t *testing.T) {
	for i := 1; i < len(migrations.All); i++ {
		if migrations.All[i-1].ID >= migrations.All[i].ID {
			t.Errorf("migration %s comes after %s", migrations.All[i].ID, migrations.All[i-1].ID)
		}
	}
	for i, m := range migrations.All {
		if m.Bootstrap && i != 0 {
			t.Errorf("only the first migration may be a bootstrap step, not %s", m.ID)
		}
	}
}

func TestUpFreshTableThenNoOp(t *testing.T) {
	client := dynamotest.Client(t)
	ctx := context.Background()
	table := dynamotest.NewName("pretoken-mig")
	r := migrations.NewRunner(client, table, migrations.All)

	before, err := r.Status(ctx)
	if err != nil {
		t.Fatalf("status before the table exists: %v", err)
	}
	for _, s := range before {
		if s.AppliedAt != "" {
			t.Errorf("%s applied before any run", s.ID)
		}
	}
	ran, err := r.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0001", "0002"}; !slices.Equal(ran, want) {
		t.Errorf("first run applied %v, want %v", ran, want)
	}
	d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	if d.Table.BillingModeSummary == nil || d.Table.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode = %+v, want on-demand", d.Table.BillingModeSummary)
	}
	if len(d.Table.KeySchema) != 2 || aws.ToString(d.Table.KeySchema[0].AttributeName) != "PK" || aws.ToString(d.Table.KeySchema[1].AttributeName) != "SK" {
		t.Errorf("key schema = %+v, want PK, SK", d.Table.KeySchema)
	}
	v, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "META"}, "SK": &types.AttributeValueMemberS{Value: "VERSION"}}})
	if err != nil || v.Item == nil {
		t.Fatalf("version item: %v, %v", v, err)
	}

	ran, err = migrations.NewRunner(client, table, migrations.All).Up(ctx)
	if err != nil || len(ran) != 0 {
		t.Errorf("second run applied %v, %v; want nothing", ran, err)
	}
	after, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range after {
		if s.AppliedAt == "" {
			t.Errorf("%s pending after a run", s.ID)
		}
	}
}

// TestConcurrentRunsApplyEachOnce races runners over a fresh table with
// migrations that count their calls.
func TestConcurrentRunsApplyEachOnce(t *testing.T) {
	client := dynamotest.Client(t)
	table := dynamotest.NewName("pretoken-race")
	var calls [3]atomic.Int32
	list := slices.Clone(migrations.All)
	for i := range calls {
		list = append(list, migrations.Migration{ID: "900" + string(rune('0'+i)), Description: "count",
			Up: func(ctx context.Context, api migrations.API, table string) error {
				calls[i].Add(1)
				return nil
			}})
	}
	const runners = 4
	var wg sync.WaitGroup
	results := make([][]string, runners)
	errs := make([]error, runners)
	for i := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = migrations.NewRunner(client, table, list).Up(context.Background())
		}()
	}
	wg.Wait()
	var all []string
	for i := range runners {
		if errs[i] != nil {
			t.Errorf("runner %d: %v", i, errs[i])
		}
		all = append(all, results[i]...)
	}
	slices.Sort(all)
	var want []string
	for _, m := range list {
		want = append(want, m.ID)
	}
	if !slices.Equal(all, want) {
		t.Errorf("runs applied %v together, want each of %v once", all, want)
	}
	for i := range calls {
		if n := calls[i].Load(); n != 1 {
			t.Errorf("migration 900%d ran %d times, want 1", i, n)
		}
	}
}
