package dynamo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrUnknownRole: an assignment named a role the stored policy lacks.
var ErrUnknownRole = errors.New("unknown role")

// userItem is USER#<sub>/ROLES. Rev counts its changes, so concurrent
// changes are detected and retried instead of lost.
type userItem struct {
	Roles []string `dynamodbav:"roles"`
	Rev   int64    `dynamodbav:"rev"`
}

// UserRoles returns the roles assigned directly to the user with sub.
func (s *Store) UserRoles(ctx context.Context, sub string) ([]string, error) {
	u, err := s.readUser(ctx, sub, false)
	if err != nil {
		return nil, err
	}
	return u.Roles, nil
}

func (s *Store) readUser(ctx context.Context, sub string, consistent bool) (userItem, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	out, err := s.api.GetItem(cctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(userPK+sub, userRoleSK), ConsistentRead: aws.Bool(consistent)})
	if err != nil {
		return userItem{}, fmt.Errorf("read user roles: %w", err)
	}
	var u userItem
	if out.Item != nil {
		if err := attributevalue.UnmarshalMap(out.Item, &u); err != nil {
			return userItem{}, fmt.Errorf("read user roles: %w", err)
		}
	}
	if len(u.Roles) == 0 {
		u.Roles = nil
	}
	return u, nil
}

// AssignResult is a user's directly assigned roles before and after a change.
type AssignResult struct {
	Before, After []string
	// Changed is false when the change was already in place; nothing was written.
	Changed bool
}

// Assign adds roles to the user's direct assignments, with an audit record
// in the same transaction. Every role must exist in the stored policy at the
// moment of writing, or nothing is written and the error wraps ErrUnknownRole.
func (s *Store) Assign(ctx context.Context, sub string, roles []string, actor string) (AssignResult, error) {
	return s.changeUser(ctx, userChange{sub: sub, actor: actor, action: "assign", add: roles})
}

// Unassign removes roles from the user's direct assignments, with an audit
// record in the same transaction. Removing a role the user lacks is no change.
func (s *Store) Unassign(ctx context.Context, sub string, roles []string, actor string) (AssignResult, error) {
	return s.changeUser(ctx, userChange{sub: sub, actor: actor, action: "unassign", remove: roles})
}

// userChange is one change to a user's direct assignments.
type userChange struct {
	sub, actor  string
	action      string // assign or unassign, for the audit record
	add, remove []string
}

// apply returns the roles after the change, sorted, nil for none.
func (c userChange) apply(before []string) []string {
	after := slices.Clone(before)
	for _, r := range c.add {
		if !slices.Contains(after, r) {
			after = append(after, r)
		}
	}
	after = slices.DeleteFunc(after, func(r string) bool { return slices.Contains(c.remove, r) })
	if len(after) == 0 {
		return nil
	}
	slices.Sort(after)
	return after
}

// changeUser reads, changes and conditionally writes the user's item,
// retrying when another writer got in between, so no update is lost.
func (s *Store) changeUser(ctx context.Context, c userChange) (AssignResult, error) {
	if c.sub == "" {
		return AssignResult{}, errors.New("empty user sub")
	}
	for attempt := 0; attempt < 20; attempt++ {
		check, err := s.rolesExist(ctx, c.add)
		if err != nil {
			return AssignResult{}, err
		}
		u, err := s.readUser(ctx, c.sub, true)
		if err != nil {
			return AssignResult{}, err
		}
		res := AssignResult{Before: u.Roles, After: c.apply(u.Roles)}
		if slices.Equal(res.Before, res.After) {
			return res, nil
		}
		res.Changed = true
		written, err := s.writeUser(ctx, c, u, res, check)
		if err != nil {
			return AssignResult{}, err
		}
		if written {
			return res, nil
		}
		// Another writer changed the user or the policy: read again.
		select {
		case <-ctx.Done():
			return AssignResult{}, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return AssignResult{}, errors.New("assignment kept conflicting with other changes; nothing was written")
}

// rolesExist checks that the stored policy has every role, and returns the
// transaction item that makes the write fail should the policy change
// before it lands. With no roles to add there is nothing to check.
func (s *Store) rolesExist(ctx context.Context, roles []string) (*types.TransactWriteItem, error) {
	if len(roles) == 0 {
		return nil, nil
	}
	p, version, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, r := range roles {
		if _, ok := p.Roles[r]; !ok {
			unknown = append(unknown, r)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: %s (the stored policy, version %s, has no such role); nothing was assigned",
			ErrUnknownRole, strings.Join(unknown, ", "), version)
	}
	return &types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:                 &s.table,
		Key:                       key(metaPK, versionSK),
		ConditionExpression:       aws.String("#v = :v"),
		ExpressionAttributeNames:  map[string]string{"#v": "version"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: version}},
	}}, nil
}

// writeUser writes the change if the user's item is still at u.Rev, with
// its audit record and the roles check in one transaction. It reports
// false when a condition failed.
func (s *Store) writeUser(ctx context.Context, c userChange, u userItem, res AssignResult, check *types.TransactWriteItem) (bool, error) {
	next := userItem{Roles: res.After, Rev: u.Rev + 1}
	if next.Roles == nil {
		next.Roles = []string{}
	}
	item, err := attributevalue.MarshalMap(next)
	if err != nil {
		return false, err
	}
	maps.Copy(item, key(userPK+c.sub, userRoleSK))
	put := &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(PK)")}
	if u.Rev > 0 {
		put.ConditionExpression = aws.String("rev = :rev")
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":rev": &types.AttributeValueMemberN{Value: strconv.FormatInt(u.Rev, 10)}}
	}
	audit, err := s.auditPut(AuditRecord{Time: time.Now(), Actor: c.actor, Action: c.action, Target: "user " + c.sub,
		OldVersion: strconv.FormatInt(u.Rev, 10), NewVersion: strconv.FormatInt(next.Rev, 10),
		Changes: []string{fmt.Sprintf("roles [%s] -> [%s]", strings.Join(res.Before, " "), strings.Join(res.After, " "))}})
	if err != nil {
		return false, err
	}
	items := []types.TransactWriteItem{{Put: put}, audit}
	if check != nil {
		items = append(items, *check)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err = s.api.TransactWriteItems(cctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if isConditionFailure(err) || isTransactionConflict(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write user roles: %w", err)
	}
	return true, nil
}

// isTransactionConflict reports a transaction cancelled because another
// transaction was writing the same item.
func isTransactionConflict(err error) bool {
	var tc *types.TransactionConflictException
	return cancelledFor(err, "TransactionConflict") || errors.As(err, &tc)
}
