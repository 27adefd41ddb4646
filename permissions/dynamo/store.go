// Package dynamo keeps a pretoken policy and per-user role assignments in
// one DynamoDB table.
//
// Table layout (string keys PK and SK):
//
//	PK              SK              item
//	META            VERSION         {version N, generation G, items K, snapshotChunks C, snapshotFormat F}: the policy the trigger serves
//	META            POLICY          {version N, policy}: the same policy as one JSON value, when it is small
//	META            GEN#<g>         a generation whose items may exist (for clean-up)
//	AUDIT           <time>#<rand>   one audit record per apply or assignment change (audit.go)
//	POLICY#<g>      ROLE#<name>     {name, description, permissions, inherits}
//	POLICY#<g>      GROUP#<name>    {name, roles}
//	POLICY#<g>      DEFAULTS        {roles}
//	POLICY#<g>      MACHINE#<id>    {id, roles}
//	POLICY#<g>      CLIENT#<id>     {id, idToken, accessToken}
//	POLICY#<g>      LIMITS          {maxTokenBytes, onOverflow}
//	POLICY#<g>      TENANCY         {active}
//	POLICY#<g>      IDP#<provider>  {provider, attribute, roles}: one identity provider's groups
//	POLICY#<g>      SNAPSHOT#<nnn>  {data}: chunk nnn of C of the compiled policy (snapshot.go)
//	SNAPSHOT        CURRENT         {version N, generation G, format F, data}: the compiled snapshot again, when it is one chunk (snapshot.go)
//	USER#<sub>      ROLES           {roles}: roles assigned to one user directly
//	MIGRATION       <id> | LOCK     the migration ledger and its lock (package migrations)
//
// A policy of any size is applied without ever being seen half-written: its
// items are written under a new generation G, invisible to readers, and one
// conditional write of META/VERSION then points readers at G. A policy that
// fits (InlineLimit) is also written whole into META/POLICY in that same
// write, so loading it is one BatchGetItem of both META items; a larger one
// is a BatchGetItem and one paginated Query of POLICY#G.
package dynamo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pretoken/pretoken/permissions"
)

// Key values.
const (
	metaPK     = "META"
	versionSK  = "VERSION"
	inlineSK   = "POLICY"
	genPrefix  = "GEN#"
	policyPK   = "POLICY#"
	userPK     = "USER#"
	userRoleSK = "ROLES"
)

// Item kinds, the SK prefixes within a generation.
const (
	kindRole     = "ROLE#"
	kindGroup    = "GROUP#"
	kindDefaults = "DEFAULTS"
	kindMachine  = "MACHINE#"
	kindClient   = "CLIENT#"
	kindLimits   = "LIMITS"
	kindTenancy  = "TENANCY"
	kindIdP      = "IDP#"
	// kindIdPLegacy is the one provider-less item of tables written
	// before identity-provider groups named their provider. It still
	// loads, as an entry without a provider, which validation refuses.
	kindIdPLegacy = "IDPGROUPS"
)

// Errors.
var (
	// ErrConflict: the stored policy is not the version the change was made
	// against; nothing was written.
	ErrConflict = errors.New("conflict: the stored policy changed; nothing was applied")
	// ErrNotInitialized: the table has no version item; run the migrations.
	ErrNotInitialized = errors.New("the table has no policy version item; run pretoken migrate")
	// ErrDamaged: the version item names a generation whose items are not
	// all there. Nothing of it is served; an apply of a valid policy file
	// writes a whole new generation and so repairs the table.
	ErrDamaged = errors.New("the table is damaged")
	// ErrUnknownOutcome: a write was sent and no answer came back, and
	// nothing could settle whether it landed; nothing was removed. Reading
	// the table (pretoken plan) shows where it stands.
	ErrUnknownOutcome = errors.New("the outcome is unknown")
)

// API is the part of the DynamoDB client the store uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store is a policy store on one DynamoDB table. It is safe for concurrent use.
type Store struct {
	api   API
	table string
	// CallTimeout bounds each DynamoDB call; a caller's earlier deadline,
	// less DeadlineMargin, wins. Defaults: 2s and 300ms.
	CallTimeout    time.Duration
	DeadlineMargin time.Duration
	// InlineLimit is the largest policy, in JSON bytes, that Apply also
	// writes whole into META/POLICY (DynamoDB items hold 400 KB); negative
	// turns inlining off. Default 256 KiB.
	InlineLimit int

	now   func() time.Time // time.Now unless a test sets it
	grace time.Duration    // tombstoneGrace unless a test sets it
}

var (
	_ permissions.Store = (*Store)(nil)
)

// New returns a store on table.
func New(api API, table string) *Store {
	return &Store{api: api, table: table, CallTimeout: 2 * time.Second, DeadlineMargin: 300 * time.Millisecond, InlineLimit: 256 << 10}
}

// Table is the table's name.
func (s *Store) Table() string { return s.table }

// call derives the context for one DynamoDB call: it ends CallTimeout from
// now, or DeadlineMargin before the caller's deadline if that is sooner, so
// an answer (even a failure) still reaches Cognito in time.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	d := time.Now().Add(s.CallTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-s.DeadlineMargin).Before(d) {
		d = dl.Add(-s.DeadlineMargin)
	}
	return context.WithDeadline(ctx, d)
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk}}
}

// versionItem is META/VERSION.
type versionItem struct {
	Version    int64  `dynamodbav:"version"`
	Generation string `dynamodbav:"generation"`
	Items      int    `dynamodbav:"items"`
	UpdatedAt  string `dynamodbav:"updatedAt,omitempty"`
	// Snapshot counts the compiled snapshot's chunks among Items, of
	// format SnapshotFormat; 0 when an older pretoken applied the policy.
	Snapshot       int `dynamodbav:"snapshotChunks,omitempty"`
	SnapshotFormat int `dynamodbav:"snapshotFormat,omitempty"`
}

func (s *Store) readVersion(ctx context.Context) (versionItem, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	out, err := s.api.GetItem(cctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(metaPK, versionSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return versionItem{}, s.readError(err)
	}
	if out.Item == nil {
		return versionItem{}, ErrNotInitialized
	}
	var v versionItem
	if err := attributevalue.UnmarshalMap(out.Item, &v); err != nil {
		return versionItem{}, fmt.Errorf("read policy version: %w", err)
	}
	return v, nil
}

// Version returns the stored policy's version.
func (s *Store) Version(ctx context.Context) (string, error) {
	v, err := s.readVersion(ctx)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(v.Version, 10), nil
}

// inlineItem is META/POLICY.
type inlineItem struct {
	Version int64  `dynamodbav:"version"`
	Policy  []byte `dynamodbav:"policy,omitempty"`
}

// readHead reads META/VERSION and META/POLICY in one request.
func (s *Store) readHead(ctx context.Context) (versionItem, *inlineItem, error) {
	v, it, err := s.readVersionWith(ctx, metaPK, inlineSK)
	if err != nil || it == nil {
		return v, nil, err
	}
	inline := &inlineItem{}
	if err := attributevalue.UnmarshalMap(it, inline); err != nil {
		return versionItem{}, nil, fmt.Errorf("read inline policy: %w", err)
	}
	return v, inline, nil
}

// readVersionWith reads META/VERSION and the item pk/sk in one consistent
// BatchGetItem. The two are read one by one, not as one transaction: a
// caller compares their versions. The other item is nil when there is none.
func (s *Store) readVersionWith(ctx context.Context, pk, sk string) (versionItem, map[string]types.AttributeValue, error) {
	keys := []map[string]types.AttributeValue{key(metaPK, versionSK), key(pk, sk)}
	var got []map[string]types.AttributeValue
	for attempt := 0; len(keys) > 0; attempt++ {
		if attempt > 5 {
			return versionItem{}, nil, errors.New("read policy version: DynamoDB kept returning unprocessed keys")
		}
		cctx, cancel := s.call(ctx)
		out, err := s.api.BatchGetItem(cctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}})
		cancel()
		if err != nil {
			return versionItem{}, nil, s.readError(err)
		}
		got = append(got, out.Responses[s.table]...)
		keys = out.UnprocessedKeys[s.table].Keys
	}
	var v versionItem
	var other map[string]types.AttributeValue
	found := false
	for _, it := range got {
		switch ipk, isk := keyOf(it); {
		case ipk == metaPK && isk == versionSK:
			if err := attributevalue.UnmarshalMap(it, &v); err != nil {
				return versionItem{}, nil, fmt.Errorf("read policy version: %w", err)
			}
			found = true
		case ipk == pk && isk == sk:
			other = it
		}
	}
	if !found {
		return versionItem{}, nil, ErrNotInitialized
	}
	return v, other, nil
}

func (s *Store) readError(err error) error {
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return fmt.Errorf("table %s does not exist; create it with pretoken migrate: %w", s.table, err)
	}
	return fmt.Errorf("read policy version: %w", err)
}

// Load returns the stored policy and its version: from the inline copy when
// there is one for the current version, else from the generation's items.
// If an apply replaces the generation being read (and its clean-up deletes
// items mid-read), the item count does not match and Load starts again; if
// the version item still names the same generation, items are missing from
// the live policy and the error wraps ErrDamaged.
func (s *Store) Load(ctx context.Context) (*permissions.Policy, string, error) {
	for attempt := 0; attempt < 3; attempt++ {
		v, inline, err := s.readHead(ctx)
		if err != nil {
			return nil, "", err
		}
		version := strconv.FormatInt(v.Version, 10)
		if inline != nil && inline.Version == v.Version && len(inline.Policy) > 0 {
			p, err := decodeInline(inline.Policy)
			if err != nil {
				return nil, "", fmt.Errorf("policy version %d: %w", v.Version, err)
			}
			return p, version, nil
		}
		p, err := s.generationPolicy(ctx, v)
		if errors.Is(err, errReplaced) {
			if derr := s.checkDamage(ctx, v); derr != nil {
				return nil, "", derr
			}
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return p, version, nil
	}
	return nil, "", errors.New("load policy: the policy kept changing while being read")
}

// errReplaced: the generation being read was replaced, and its items deleted,
// while it was read.
var errReplaced = errors.New("policy generation replaced while reading")

// checkDamage is called when v's generation had fewer items than v counts.
// If the version item still names that generation, nothing is replacing it:
// items are missing from the live policy, and the error says so and how to
// recover. Otherwise the generation was replaced while it was read (nil).
func (s *Store) checkDamage(ctx context.Context, v versionItem) error {
	now, err := s.readVersion(ctx)
	if err != nil {
		return err
	}
	if now.Generation != v.Generation {
		return nil
	}
	items, err := s.queryGeneration(ctx, v.Generation)
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: policy version %d (generation %s) has %d of its %d items; nothing of it is served. Recover with pretoken apply -f FILE (a valid policy file, such as the last one applied)",
		ErrDamaged, v.Version, v.Generation, len(items), v.Items)
}

// generationPolicy reads the policy of v's generation from its items. When
// fewer items come back than v counts, the generation was replaced mid-read
// and the error is errReplaced.
func (s *Store) generationPolicy(ctx context.Context, v versionItem) (*permissions.Policy, error) {
	items, err := s.queryGeneration(ctx, v.Generation)
	if err != nil {
		return nil, err
	}
	if len(items) != v.Items {
		return nil, errReplaced
	}
	p, err := decodePolicy(items)
	if err != nil {
		return nil, fmt.Errorf("policy version %d: %w", v.Version, err)
	}
	return p, nil
}

// decodeInline decodes META/POLICY strictly: unknown fields fail.
func decodeInline(b []byte) (*permissions.Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p permissions.Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("inline policy: %w", err)
	}
	return &p, nil
}

// partition is the strongly consistent Query for every item under pk: the
// writers', the audit trail's and the trigger's user read alike, so an
// unassign counts at the next token. Callers narrow it (a sort-key
// condition, a projection, an order).
func (s *Store) partition(pk string) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		ConsistentRead:            aws.Bool(true),
	}
}

func (s *Store) queryGeneration(ctx context.Context, gen string) ([]map[string]types.AttributeValue, error) {
	if gen == "" {
		return nil, nil // version 0: the empty policy
	}
	items, err := s.queryAll(ctx, s.partition(policyPK+gen), 0)
	if err != nil {
		return nil, fmt.Errorf("query the policy's items: %w", err)
	}
	return items, nil
}

// queryAll runs a Query to its last page (or until it has max items, when
// max > 0), each page under its own deadline.
func (s *Store) queryAll(ctx context.Context, in *dynamodb.QueryInput, max int) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	p := dynamodb.NewQueryPaginator(s.api, in)
	for p.HasMorePages() && (max <= 0 || len(items) < max) {
		cctx, cancel := s.call(ctx)
		page, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			return nil, err
		}
		items = append(items, page.Items...)
	}
	return items, nil
}

// Stored item shapes. The policy types' yaml tags name the attributes, so an
// item reads like the policy file.
type (
	roleItem struct {
		Name string `yaml:"name"`
		permissions.Role
	}
	groupItem struct {
		Name  string   `yaml:"name"`
		Roles []string `yaml:"roles"`
	}
	machineItem struct {
		ID    string   `yaml:"id"`
		Roles []string `yaml:"roles"`
	}
	clientItem struct {
		ID string `yaml:"id"`
		permissions.ClientProfile
	}
)

func yamlTags(o *attributevalue.EncoderOptions) { o.TagKey = "yaml" }
func yamlTagsDecode(o *attributevalue.DecoderOptions) {
	o.TagKey = "yaml"
}

// encodePolicy turns p into the items of generation gen.
func encodePolicy(p *permissions.Policy, gen string) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	add := func(sk string, v any) error {
		m, err := attributevalue.MarshalMapWithOptions(v, yamlTags)
		if err != nil {
			return fmt.Errorf("encode %s: %w", sk, err)
		}
		m["PK"] = &types.AttributeValueMemberS{Value: policyPK + gen}
		m["SK"] = &types.AttributeValueMemberS{Value: sk}
		items = append(items, m)
		return nil
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(p.Roles)) {
		errs = append(errs, add(kindRole+name, roleItem{Name: name, Role: p.Roles[name]}))
	}
	for _, name := range slices.Sorted(maps.Keys(p.Groups)) {
		errs = append(errs, add(kindGroup+name, groupItem{Name: name, Roles: p.Groups[name]}))
	}
	errs = append(errs, add(kindDefaults, p.Defaults))
	for _, id := range slices.Sorted(maps.Keys(p.Machines)) {
		errs = append(errs, add(kindMachine+id, machineItem{ID: id, Roles: p.Machines[id]}))
	}
	for _, id := range slices.Sorted(maps.Keys(p.Clients)) {
		errs = append(errs, add(kindClient+id, clientItem{ID: id, ClientProfile: p.Clients[id]}))
	}
	errs = append(errs, add(kindLimits, p.Limits))
	if !p.Tenancy.IsZero() {
		errs = append(errs, add(kindTenancy, p.Tenancy))
	}
	for _, g := range p.IdPGroups.Sorted() {
		errs = append(errs, add(kindIdP+g.Provider, g))
	}
	return items, errors.Join(errs...)
}

// decodePolicy rebuilds a policy from its items. It is strict: an item it
// does not recognise, or one that does not decode, fails the load, so a
// corrupt table never yields a partial policy.
func decodePolicy(items []map[string]types.AttributeValue) (*permissions.Policy, error) {
	p := &permissions.Policy{}
	for _, item := range items {
		skAttr, ok := item["SK"].(*types.AttributeValueMemberS)
		if !ok {
			return nil, errors.New("policy item without a string SK")
		}
		sk := skAttr.Value
		var err error
		switch {
		case strings.HasPrefix(sk, kindSnapshot):
			// Derived from the items around it; the trigger's, not the policy's.
		case strings.HasPrefix(sk, kindRole):
			var it roleItem
			if err = attributevalue.UnmarshalMapWithOptions(item, &it, yamlTagsDecode); err == nil {
				err = put(&p.Roles, it.Name, it.Role, sk, kindRole)
			}
		case strings.HasPrefix(sk, kindGroup):
			var it groupItem
			if err = attributevalue.UnmarshalMapWithOptions(item, &it, yamlTagsDecode); err == nil {
				err = put(&p.Groups, it.Name, it.Roles, sk, kindGroup)
			}
		case sk == kindDefaults:
			err = attributevalue.UnmarshalMapWithOptions(item, &p.Defaults, yamlTagsDecode)
		case strings.HasPrefix(sk, kindMachine):
			var it machineItem
			if err = attributevalue.UnmarshalMapWithOptions(item, &it, yamlTagsDecode); err == nil {
				err = put(&p.Machines, it.ID, it.Roles, sk, kindMachine)
			}
		case strings.HasPrefix(sk, kindClient):
			var it clientItem
			if err = attributevalue.UnmarshalMapWithOptions(item, &it, yamlTagsDecode); err == nil {
				err = put(&p.Clients, it.ID, it.ClientProfile, sk, kindClient)
			}
		case sk == kindLimits:
			err = attributevalue.UnmarshalMapWithOptions(item, &p.Limits, yamlTagsDecode)
		case sk == kindTenancy:
			err = attributevalue.UnmarshalMapWithOptions(item, &p.Tenancy, yamlTagsDecode)
		case strings.HasPrefix(sk, kindIdP):
			var it permissions.IdPGroup
			if err = attributevalue.UnmarshalMapWithOptions(item, &it, yamlTagsDecode); err == nil && sk != kindIdP+it.Provider {
				err = fmt.Errorf("item names %q but its key is %q", it.Provider, sk)
			}
			p.IdPGroups = append(p.IdPGroups, it)
		case sk == kindIdPLegacy:
			var it permissions.IdPGroup
			err = attributevalue.UnmarshalMapWithOptions(item, &it, yamlTagsDecode)
			p.IdPGroups = append(p.IdPGroups, it)
		default:
			err = errors.New("unknown item kind")
		}
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", sk, err)
		}
	}
	p.IdPGroups = p.IdPGroups.Sorted()
	return p, nil
}

// put stores v under name, checking that the item's key names it too.
func put[V any](m *map[string]V, name string, v V, sk, kind string) error {
	if sk != kind+name {
		return fmt.Errorf("item names %q but its key is %q", name, sk)
	}
	if *m == nil {
		*m = make(map[string]V)
	}
	(*m)[name] = v
	return nil
}

// SeedVersion writes the version item of a new table: version 0, the
// empty policy. An existing version item is left as it is. The migrations
// call it rather than writing the item themselves, so the layout has one
// owner.
func SeedVersion(ctx context.Context, api interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}, table string) error {
	item, err := attributevalue.MarshalMap(versionItem{})
	if err != nil {
		return err
	}
	maps.Copy(item, key(metaPK, versionSK))
	_, err = api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item, ConditionExpression: aws.String("attribute_not_exists(PK)")})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("seed the policy version item: %w", err)
	}
	return nil
}

func newGeneration(version int64) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return strconv.FormatInt(version, 10) + "-" + hex.EncodeToString(b)
}

// NewClient returns a DynamoDB client for cfg. When the endpoint is
// overridden (AWS_ENDPOINT_URL_DYNAMODB, as for DynamoDB Local, whose error
// responses carry no checksum) response checksum validation is off, to spare
// the logs a warning per failed request.
func NewClient(cfg aws.Config) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || os.Getenv("AWS_ENDPOINT_URL") != "" {
			o.DisableValidateResponseChecksum = true
		}
	})
}
