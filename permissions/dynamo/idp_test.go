package dynamo_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// TestIdPGroupsRoundTrip: identity-provider entries, one item per provider,
// load back as the file wrote them (by provider), from the inline copy and
// from the items alike, and export gives the file's bytes again.
func TestIdPGroupsRoundTrip(t *testing.T) {
	src := []byte(`idpGroups:
  - provider: Okta
    attribute: custom:groups
    roles:
      Okta-Support:
        - support
  - provider: Zeta
    attribute: custom:zgroups
    roles:
      z-admins:
        - support
roles:
  support:
    permissions:
      - tickets:read
`)
	want, err := permissions.ParseFile("p.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes, err := permissions.MarshalFile(want, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, inline := range []int{256 << 10, -1} {
		s, client, table := newStore(t)
		s.InlineLimit = inline
		ctx := context.Background()
		// The file's entries in reverse order: order carries no meaning.
		rev := *want
		rev.IdPGroups = permissions.IdPGroups{want.IdPGroups[1], want.IdPGroups[0]}
		if _, err := s.Apply(ctx, &rev, dynamo.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		var idpKeys []string
		for _, k := range keysOf(scan(t, client, table)) {
			if strings.Contains(k, " IDP") {
				idpKeys = append(idpKeys, k[strings.Index(k, " ")+1:])
			}
		}
		if diff := cmp.Diff([]string{"IDP#Okta", "IDP#Zeta"}, idpKeys, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("inline %d: IdP items (-want +got):\n%s", inline, diff)
		}
		got, _, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gotBytes, err := permissions.MarshalFile(got, "")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(wantBytes), string(gotBytes)); diff != "" {
			t.Errorf("inline %d: export after apply (-file +export):\n%s", inline, diff)
		}
		if _, err := permissions.Compile(got, "1"); err != nil {
			t.Errorf("inline %d: the loaded policy does not compile: %v", inline, err)
		}
	}
}

// TestLegacyIdPGroupsItemIsRefused: a table written before identity-provider
// groups named their provider holds one IDPGROUPS item. It loads as an entry
// without a provider, which does not compile, with a message naming
// provider: the trigger then follows its failure mode rather than serve
// groups from any provider or user.
func TestLegacyIdPGroupsItemIsRefused(t *testing.T) {
	s, client, table := newStore(t)
	s.InlineLimit = -1
	ctx := context.Background()
	p, err := permissions.ParseFile("p.yaml", []byte("roles: {support: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var pk string
	for _, k := range keysOf(scan(t, client, table)) {
		if strings.HasPrefix(k, "POLICY#") {
			pk = strings.Fields(k)[0]
		}
	}
	// The generation's item count is checked on load, so the legacy item
	// replaces the DEFAULTS item rather than joining the others.
	if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: "DEFAULTS"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: map[string]types.AttributeValue{
		"PK":        &types.AttributeValueMemberS{Value: pk},
		"SK":        &types.AttributeValueMemberS{Value: "IDPGROUPS"},
		"attribute": &types.AttributeValueMemberS{Value: "custom:groups"},
		"roles": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"Okta-Support": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "support"}}}}},
	}}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Load(ctx)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if _, err := permissions.Compile(got, "1"); err == nil || !strings.Contains(err.Error(), "provider") {
		t.Errorf("compile of a legacy provider-less item: %v; want an error naming provider", err)
	}
}
