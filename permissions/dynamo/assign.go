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
	"github.com/pretoken/pretoken/permissions"
)

// Errors of user changes.
var (
	// ErrUnknownRole: an assignment named a role the stored policy lacks.
	ErrUnknownRole = errors.New("unknown role")
	// ErrNotMember: the tenant to make active is not one of the user's.
	ErrNotMember = errors.New("not a member of that tenant")
)

// Key values of a user's items, all under USER#<sub>, so that everything
// about one user is one Query: ROLES (direct roles), TENANT#<t> (roles in
// tenant t; also indexed by tenant through TPK/TSK, the byTenant index) and
// ACTIVE (the stored active tenant).
const (
	tenantSK    = "TENANT#"
	activeSK    = "ACTIVE"
	tenantIndex = "byTenant"
	tenantPK    = "TENANT#" // TPK of a membership item
)

// userItem is USER#<sub>/ROLES or USER#<sub>/TENANT#<t>. Rev counts its
// changes, so concurrent changes are detected and retried instead of lost.
type userItem struct {
	Roles  []string `dynamodbav:"roles"`
	Rev    int64    `dynamodbav:"rev"`
	Tenant string   `dynamodbav:"tenant,omitempty"`
}

// User returns everything the table holds about one user (direct roles,
// memberships, the stored active tenant) with one request, however many
// tenants the user belongs to. The read is strongly consistent, so an
// unassign counts at the very next token; it costs one read unit per 4 KB
// instead of half of one.
func (s *Store) User(ctx context.Context, sub string) (permissions.User, error) {
	var u permissions.User
	items, err := s.queryAll(ctx, s.partition(userPK+sub), 0)
	if err != nil {
		return u, fmt.Errorf("read user: %w", err)
	}
	for _, it := range items {
		sk, _ := it["SK"].(*types.AttributeValueMemberS)
		var item userItem
		if err := attributevalue.UnmarshalMap(it, &item); err != nil {
			return u, fmt.Errorf("read user: %w", err)
		}
		switch {
		case sk == nil:
		case sk.Value == userRoleSK:
			u.Roles = item.Roles
		case sk.Value == activeSK:
			u.Active = item.Tenant
		case strings.HasPrefix(sk.Value, tenantSK):
			if u.Memberships == nil {
				u.Memberships = map[string][]string{}
			}
			u.Memberships[strings.TrimPrefix(sk.Value, tenantSK)] = item.Roles
		}
	}
	if len(u.Roles) == 0 {
		u.Roles = nil
	}
	return u, nil
}

// UserRoles returns the roles assigned directly to the user with sub.
func (s *Store) UserRoles(ctx context.Context, sub string) ([]string, error) {
	u, err := s.User(ctx, sub)
	return u.Roles, err
}

// readUser reads one of the user's items, strongly consistent (its callers
// write next): sk is userSK(tenant) for roles, activeSK for the active
// tenant. A missing item is the zero userItem.
func (s *Store) readUser(ctx context.Context, sub, sk string) (userItem, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	out, err := s.api.GetItem(cctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(userPK+sub, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return userItem{}, fmt.Errorf("read user: %w", err)
	}
	var u userItem
	if out.Item != nil {
		if err := attributevalue.UnmarshalMap(out.Item, &u); err != nil {
			return userItem{}, fmt.Errorf("read user: %w", err)
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

func userSK(tenant string) string {
	if tenant == "" {
		return userRoleSK
	}
	return tenantSK + tenant
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

// AssignInTenant adds roles to the user's membership of tenant (making the
// user a member), with the guarantees of Assign.
func (s *Store) AssignInTenant(ctx context.Context, sub, tenant string, roles []string, actor string) (AssignResult, error) {
	if err := checkTenant(tenant); err != nil {
		return AssignResult{}, err
	}
	return s.changeUser(ctx, userChange{sub: sub, tenant: tenant, actor: actor, action: "assign", add: roles})
}

// UnassignInTenant removes roles from the user's membership of tenant; a
// membership left without roles is removed, and with it the user's
// place in the tenant.
func (s *Store) UnassignInTenant(ctx context.Context, sub, tenant string, roles []string, actor string) (AssignResult, error) {
	if err := checkTenant(tenant); err != nil {
		return AssignResult{}, err
	}
	return s.changeUser(ctx, userChange{sub: sub, tenant: tenant, actor: actor, action: "unassign", remove: roles})
}

func checkTenant(t string) error {
	if t == "" || len(t) > 128 || strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r == '#' }) {
		return fmt.Errorf("tenant id %q must be 1 to 128 characters without blanks or '#'", t)
	}
	return nil
}

// userChange is one change to a user's direct assignments, or to the
// user's roles in one tenant.
type userChange struct {
	sub, actor  string
	tenant      string // "" for direct roles
	action      string // assign or unassign, for the audit record
	add, remove []string
}

func (c userChange) target() string {
	if c.tenant == "" {
		return "user " + c.sub
	}
	return "user " + c.sub + " tenant " + c.tenant
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
		u, err := s.readUser(ctx, c.sub, userSK(c.tenant))
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
	next.Tenant = c.tenant
	item, err := attributevalue.MarshalMap(next)
	if err != nil {
		return false, err
	}
	maps.Copy(item, key(userPK+c.sub, userSK(c.tenant)))
	if c.tenant != "" { // the byTenant index lists a tenant's members
		item["TPK"] = &types.AttributeValueMemberS{Value: tenantPK + c.tenant}
		item["TSK"] = &types.AttributeValueMemberS{Value: c.sub}
	}
	write := types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(PK)")}}
	var active *types.TransactWriteItem // ending a membership: the active tenant, cleared or fenced
	changes := []string{fmt.Sprintf("roles [%s] -> [%s]", strings.Join(res.Before, " "), strings.Join(res.After, " "))}
	if u.Rev > 0 {
		cond := aws.String("rev = :rev")
		vals := map[string]types.AttributeValue{":rev": &types.AttributeValueMemberN{Value: strconv.FormatInt(u.Rev, 10)}}
		write.Put.ConditionExpression, write.Put.ExpressionAttributeValues = cond, vals
		if c.tenant != "" && len(res.After) == 0 { // no roles left: no longer a member
			write = types.TransactWriteItem{Delete: &types.Delete{TableName: &s.table, Key: key(userPK+c.sub, userSK(c.tenant)),
				ConditionExpression: cond, ExpressionAttributeValues: vals}}
			if active, err = s.endActive(ctx, c); err != nil {
				return false, err
			}
			if active.Delete != nil {
				changes = append(changes, fmt.Sprintf("active tenant %q -> \"\"", c.tenant))
			}
		}
	}
	audit, err := s.auditPut(AuditRecord{Time: time.Now(), Actor: c.actor, Action: c.action, Target: c.target(),
		OldVersion: strconv.FormatInt(u.Rev, 10), NewVersion: strconv.FormatInt(next.Rev, 10), Changes: changes})
	if err != nil {
		return false, err
	}
	items := []types.TransactWriteItem{write, audit}
	if active != nil {
		items = append(items, *active)
	}
	if check != nil {
		items = append(items, *check)
	}
	err = s.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if isConditionFailure(err) || isTransactionConflict(err) {
		return false, nil
	}
	if errors.Is(err, ErrUnknownOutcome) {
		return false, fmt.Errorf("%s %s: %w", c.action, c.target(), unknownWith(err, "run pretoken user "+c.sub+" to see where it stands"))
	}
	if err != nil {
		return false, fmt.Errorf("write user roles: %w", err)
	}
	return true, nil
}

// endActive is the transaction item that goes with ending the user's
// membership of c.tenant: when that tenant is the stored active one, its
// deletion (so a later re-add does not make it active again by itself);
// otherwise a check that it still is not, which fences a SetActiveTenant
// landing in between (the transaction then fails and is retried).
func (s *Store) endActive(ctx context.Context, c userChange) (*types.TransactWriteItem, error) {
	cur, err := s.readUser(ctx, c.sub, activeSK)
	if err != nil {
		return nil, err
	}
	names := map[string]string{"#t": "tenant"}
	vals := map[string]types.AttributeValue{":t": &types.AttributeValueMemberS{Value: c.tenant}}
	k := key(userPK+c.sub, activeSK)
	if cur.Tenant == c.tenant {
		return &types.TransactWriteItem{Delete: &types.Delete{TableName: &s.table, Key: k,
			ConditionExpression: aws.String("#t = :t"), ExpressionAttributeNames: names, ExpressionAttributeValues: vals}}, nil
	}
	return &types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: &s.table, Key: k,
		ConditionExpression: aws.String("attribute_not_exists(PK) OR #t <> :t"), ExpressionAttributeNames: names, ExpressionAttributeValues: vals}}, nil
}

// isTransactionConflict reports a transaction cancelled because another
// transaction was writing the same item.
func isTransactionConflict(err error) bool {
	var tc *types.TransactionConflictException
	return cancelledFor(err, "TransactionConflict") || errors.As(err, &tc)
}
