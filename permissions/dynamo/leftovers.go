package dynamo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ScanAPI is what Leftovers needs beyond API: the one Scan of the store.
type ScanAPI interface {
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Leftover is an item that nothing serves and that no apply in progress
// owns: left by an abandoned or killed apply, or written late.
type Leftover struct {
	PK, SK string
	// Bytes is the item's size by DynamoDB's rules.
	Bytes int
	// Why says whose it is and whether an apply removes it.
	Why string
}

// Leftovers lists every leftover item of the table, changing nothing: the
// items of generations other than the live one that are abandoned, have no
// marker, or whose apply began more than pendingTimeout ago and never
// switched; and the audit part items of applies whose record was never
// written. Items of an apply still in progress are not leftovers. It is
// the one Scan of the store (the whole table is read, a page at a time):
// leftovers are, by their nature, where no key leads.
func (s *Store) Leftovers(ctx context.Context) ([]Leftover, error) {
	scanner, ok := s.api.(ScanAPI)
	if !ok {
		return nil, fmt.Errorf("list leftovers: the DynamoDB client cannot Scan")
	}
	live, err := s.readVersion(ctx)
	if err != nil {
		return nil, err
	}
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(scanner, &dynamodb.ScanInput{TableName: &s.table, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		cctx, cancel := s.call(ctx)
		page, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list leftovers: %w", err)
		}
		items = append(items, page.Items...)
	}
	markers := map[string]marker{}
	records := map[string]bool{}
	inProgressAudit := map[string]bool{}
	for _, it := range items {
		pk, sk := keyOf(it)
		switch {
		case pk == metaPK && strings.HasPrefix(sk, genPrefix):
			if m, err := decodeMarker(it); err == nil {
				markers[m.Gen] = m
			}
		case pk == auditPK:
			records[sk] = true
		}
	}
	inProgress := func(m marker) bool {
		return !m.dropped() && s.timeNow().Sub(parseTime(m.CreatedAt)) < pendingTimeout
	}
	owned := map[string]bool{} // audit parts an apply's clean-up will find through a marker
	for _, m := range markers {
		if m.Audit != "" && (inProgress(m) || m.Gen == live.Generation) {
			inProgressAudit[m.Audit] = true
		}
		owned[m.Audit] = m.Audit != ""
	}
	var out []Leftover
	for _, it := range items {
		pk, sk := keyOf(it)
		why := ""
		switch {
		case strings.HasPrefix(pk, policyPK):
			gen := pk[len(policyPK):]
			m, marked := markers[gen]
			switch {
			case gen == live.Generation:
			case !marked:
				why = "generation " + gen + " has no marker: no apply finds it; delete it by hand (it is not the live policy)"
			case m.dropped():
				why = "generation " + gen + " was abandoned: the next apply removes it"
			case !inProgress(m):
				why = "generation " + gen + " was never switched to (its apply began " + m.CreatedAt + "): the next apply removes it"
			}
		case strings.HasPrefix(pk, auditPartPK):
			id := pk[len(auditPartPK):]
			if !records[id] && !inProgressAudit[id] {
				why = "audit part of an apply that never switched (no record " + id + "): "
				if owned[id] {
					why += "the next apply removes it"
				} else {
					why += "no apply finds it; delete it by hand"
				}
			}
		}
		if why != "" {
			out = append(out, Leftover{PK: pk, SK: sk, Bytes: itemSize(it), Why: why})
		}
	}
	slices.SortFunc(out, func(a, b Leftover) int {
		if c := strings.Compare(a.PK, b.PK); c != 0 {
			return c
		}
		return strings.Compare(a.SK, b.SK)
	})
	return out, nil
}

func keyOf(it map[string]types.AttributeValue) (pk, sk string) {
	if v, ok := it["PK"].(*types.AttributeValueMemberS); ok {
		pk = v.Value
	}
	if v, ok := it["SK"].(*types.AttributeValueMemberS); ok {
		sk = v.Value
	}
	return pk, sk
}
