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
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
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

// TestLockOutlivesTheLongestWait: a run that waits for the index build
// (0003, up to IndexWait) still holds the lock, so no second run starts the
// same migrations meanwhile.
func TestLockOutlivesTheLongestWait(t *testing.T) {
	r := migrations.NewRunner(nil, "pretoken-test", migrations.All)
	for _, m := range migrations.All {
		if r.LockTTL <= m.Wait {
			t.Errorf("the lock holds %s; migration %s may wait %s", r.LockTTL, m.ID, m.Wait)
		}
	}
	i := slices.IndexFunc(migrations.All, func(m migrations.Migration) bool { return m.ID == "0003" })
	if i < 0 || migrations.All[i].Wait < migrations.IndexWait {
		t.Errorf("migration 0003 waits up to %s for its index but declares no such Wait", migrations.IndexWait)
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
	if want := []string{"0001", "0002", "0003"}; !slices.Equal(ran, want) {
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
	if len(d.Table.GlobalSecondaryIndexes) != 1 || aws.ToString(d.Table.GlobalSecondaryIndexes[0].IndexName) != "byTenant" ||
		d.Table.GlobalSecondaryIndexes[0].IndexStatus != types.IndexStatusActive {
		t.Errorf("indexes = %+v, want byTenant, active", d.Table.GlobalSecondaryIndexes)
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

// TestTenantIndexMigration: 0003 on a table that has policy and users
// already, while reads go on (as the trigger's), and on a table made with
// the index (as CloudFormation makes it): applied once, safe to repeat, no
// read fails meanwhile, and the index lists members written before it.
func TestTenantIndexMigration(t *testing.T) {
	client := dynamotest.Client(t)
	ctx := context.Background()
	table := dynamotest.NewName("pretoken-0003")
	first := migrations.NewRunner(client, table, migrations.All[:2])
	if _, err := first.Up(ctx); err != nil {
		t.Fatal(err)
	}
	store := dynamo.New(client, table)
	p := &permissions.Policy{Roles: map[string]permissions.Role{"member": {Permissions: []string{"orders:read"}}}}
	if _, err := store.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.AssignInTenant(ctx, "sub-1", "acme", []string{"member"}, "test"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var reads, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the trigger's reads, during the migration
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := store.Load(ctx); err != nil {
				failed.Add(1)
			}
			if _, err := store.User(ctx, "sub-1"); err != nil {
				failed.Add(1)
			}
			reads.Add(2)
		}
	}()
	ran, err := migrations.NewRunner(client, table, migrations.All).Up(ctx)
	close(stop)
	wg.Wait()
	if err != nil || !slices.Equal(ran, []string{"0003"}) {
		t.Fatalf("0003: ran %v, %v", ran, err)
	}
	if failed.Load() > 0 || reads.Load() == 0 {
		t.Errorf("%d of %d reads failed during the migration", failed.Load(), reads.Load())
	}
	members, err := store.TenantMembers(ctx, "acme")
	if err != nil || len(members) != 1 || members[0].Sub != "sub-1" {
		t.Errorf("members written before the index: %+v, %v", members, err)
	}
	// Run the step itself again: nothing to do, no error.
	if err := migrations.All[2].Up(ctx, client, table); err != nil {
		t.Errorf("0003 again: %v", err)
	}

	// A table that already has the index, as CloudFormation creates it.
	withIndex := dynamotest.NewName("pretoken-cfn")
	gsi, attrs := dynamo.TenantIndexDefinition()
	_, err = client.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: &withIndex, BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: append(attrs,
			types.AttributeDefinition{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
			types.AttributeDefinition{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS}),
		KeySchema:              []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange}},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{gsi}})
	if err != nil {
		t.Fatal(err)
	}
	if ran, err := migrations.NewRunner(client, withIndex, migrations.All).Up(ctx); err != nil || len(ran) != 3 {
		t.Errorf("on a table made with the index: %v, %v", ran, err)
	}
}
