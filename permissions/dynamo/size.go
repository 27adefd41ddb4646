package dynamo

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// MaxItemBytes is DynamoDB's item size limit: 400 KB, attribute names
// included.
const MaxItemBytes = 400 * 1024

// itemSize is an item's size as DynamoDB counts it (developer guide, "Item
// sizes and formats"): each attribute's name and value in UTF-8 bytes;
// numbers about one byte per two digits plus one; booleans and nulls one
// byte; lists and maps three bytes plus one per element.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		digits := len(strings.TrimLeft(strings.TrimLeft(v.Value, "-"), "0."))
		return (digits+1)/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += valueSize(&types.AttributeValueMemberN{Value: s})
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}

// checkSizes fails, naming each, for items over DynamoDB's limit: measured
// before the first write, so an apply never fails midway on one.
func checkSizes(items []map[string]types.AttributeValue) error {
	var over []string
	for _, it := range items {
		if n := itemSize(it); n > MaxItemBytes {
			sk, _ := it["SK"].(*types.AttributeValueMemberS)
			name := "?"
			if sk != nil {
				name = describeSK(sk.Value)
			}
			over = append(over, fmt.Sprintf("%s would take %d bytes as one stored item, over DynamoDB's limit of %d (400 KB)", name, n, MaxItemBytes))
		}
	}
	if len(over) > 0 {
		return fmt.Errorf("invalid policy: %s; nothing was written", strings.Join(over, "; "))
	}
	return nil
}

// describeSK names a policy item as the policy file does.
func describeSK(sk string) string {
	for _, k := range []struct{ prefix, name string }{{kindRole, "role"}, {kindGroup, "group"}, {kindMachine, "machine client"}, {kindClient, "client profile"}} {
		if rest, ok := strings.CutPrefix(sk, k.prefix); ok {
			return fmt.Sprintf("%s %q", k.name, rest)
		}
	}
	return strings.ToLower(sk)
}
