package awsfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// updatable are the members of UpdateUserPool's request (API reference,
// "UpdateUserPool", Request Syntax), each under the name DescribeUserPool
// gives it. A member not sent is reset: to its default, which here is
// absent.
var updatable = map[string]string{
	"AccountRecoverySetting": "AccountRecoverySetting", "AdminCreateUserConfig": "AdminCreateUserConfig",
	"AutoVerifiedAttributes": "AutoVerifiedAttributes", "DeletionProtection": "DeletionProtection",
	"DeviceConfiguration": "DeviceConfiguration", "EmailConfiguration": "EmailConfiguration",
	"EmailVerificationMessage": "EmailVerificationMessage", "EmailVerificationSubject": "EmailVerificationSubject",
	"IssuerConfiguration": "IssuerConfiguration", "KeyConfiguration": "KeyConfiguration",
	"LambdaConfig": "LambdaConfig", "MfaConfiguration": "MfaConfiguration", "Policies": "Policies",
	"PoolName": "Name", "SmsAuthenticationMessage": "SmsAuthenticationMessage", "SmsConfiguration": "SmsConfiguration",
	"SmsVerificationMessage": "SmsVerificationMessage", "UserAttributeUpdateSettings": "UserAttributeUpdateSettings",
	"UserPoolAddOns": "UserPoolAddOns", "UserPoolTags": "UserPoolTags", "UserPoolTier": "UserPoolTier",
	"VerificationMessageTemplate": "VerificationMessageTemplate",
}

// MsgUnusedAccountValidityDays is Cognito's answer to an UpdateUserPool
// that carries AdminCreateUserConfig.UnusedAccountValidityDays.
const MsgUnusedAccountValidityDays = "Please use TemporaryPasswordValidityDays in PasswordPolicy instead of UnusedAccountValidityDays"

type pool struct {
	desc    map[string]any // DescribeUserPool's UserPool
	users   []User
	clients []map[string]any // DescribeUserPoolClient's UserPoolClient
}

// User is a user in a faked pool.
type User struct {
	Username string
	Sub      string
	// Provider, when set, makes the user federated (EXTERNAL_PROVIDER):
	// their username is Provider_<id>, and their sub does not work as a
	// username.
	Provider string
	Groups   []string
}

// AddPool adds a pool, given as DescribeUserPool's UserPool member (its Id
// is the key).
func (f *Fake) AddPool(desc map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := clone(desc).(map[string]any)
	f.pools[d["Id"].(string)] = &pool{desc: d}
}

// Pool returns a pool as DescribeUserPool would, or nil.
func (f *Fake) Pool(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.pools[id]; p != nil {
		return clone(p.desc).(map[string]any)
	}
	return nil
}

// TouchPool changes a pool behind the caller's back, as another admin
// would: its LastModifiedDate moves.
func (f *Fake) TouchPool(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bump(f.pools[id].desc)
}

// EditPool changes a pool as the service itself might (edit gets
// DescribeUserPool's UserPool member), without moving LastModifiedDate.
func (f *Fake) EditPool(id string, edit func(pool map[string]any)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	edit(f.pools[id].desc)
}

func bump(d map[string]any) {
	t, _ := d["LastModifiedDate"].(float64)
	d["LastModifiedDate"] = max(t+1, 1.7e9)
}

// AddUser adds a user to a pool.
func (f *Fake) AddUser(poolID string, u User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pools[poolID].users = append(f.pools[poolID].users, u)
}

// AddClient adds an app client, given as DescribeUserPoolClient's
// UserPoolClient member (ClientId, ClientName, WriteAttributes,
// AllowedOAuthScopes...).
func (f *Fake) AddClient(poolID string, c map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c = clone(c).(map[string]any)
	c["UserPoolId"] = poolID
	f.pools[poolID].clients = append(f.pools[poolID].clients, c)
}

func (f *Fake) serveCognito(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AWSCognitoIdentityProviderService.")
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if !ok || json.Unmarshal(body, &in) != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"SerializationException","message":"not a Cognito request"}`)
		return
	}
	action := "cognito-idp:" + op
	f.mu.Lock()
	f.record(r, action, in)
	out, aerr := f.cognito(op, in)
	f.mu.Unlock()
	if aerr != nil {
		w.WriteHeader(aerr.status)
		json.NewEncoder(w).Encode(map[string]string{"__type": aerr.code, "message": aerr.message})
	} else {
		json.NewEncoder(w).Encode(out)
	}
	f.hook(action)
}

func badParam(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "InvalidParameterException", format, args...)
}

// cognito answers one operation; f.mu is held.
func (f *Fake) cognito(op string, in map[string]any) (any, *apiError) {
	id, _ := in["UserPoolId"].(string)
	p := f.pools[id]
	if p == nil {
		return nil, errorf(http.StatusBadRequest, "ResourceNotFoundException", "User pool %s does not exist.", id)
	}
	switch op {
	case "DescribeUserPool":
		return map[string]any{"UserPool": clone(p.desc)}, nil
	case "UpdateUserPool":
		return f.updateUserPool(p, in)
	case "AdminUserGlobalSignOut":
		name, _ := in["Username"].(string)
		for _, u := range p.users {
			if u.Username == name || (u.Provider == "" && u.Sub == name) {
				return map[string]any{}, nil
			}
		}
		return nil, errorf(http.StatusBadRequest, "UserNotFoundException", "User does not exist.")
	case "ListUsers":
		return listUsers(p, in)
	case "ListUsersInGroup":
		group, _ := in["GroupName"].(string)
		var users []any
		for _, u := range p.users {
			if slices.Contains(u.Groups, group) {
				users = append(users, userType(u))
			}
		}
		return map[string]any{"Users": users}, nil
	case "ListUserPoolClients":
		n, ok := in["MaxResults"].(float64)
		if !ok {
			n = 60
		}
		if n < 1 || n > 60 {
			return nil, badParam("1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 60")
		}
		start, _ := strconv.Atoi(fmt.Sprint(in["NextToken"]))
		end := min(start+int(n), len(p.clients))
		var cs []any
		for _, c := range p.clients[start:end] {
			cs = append(cs, map[string]any{"ClientId": c["ClientId"], "ClientName": c["ClientName"], "UserPoolId": id})
		}
		out := map[string]any{"UserPoolClients": cs}
		if end < len(p.clients) {
			out["NextToken"] = strconv.Itoa(end)
		}
		return out, nil
	case "DescribeUserPoolClient":
		for _, c := range p.clients {
			if c["ClientId"] == in["ClientId"] {
				return map[string]any{"UserPoolClient": clone(c)}, nil
			}
		}
		return nil, errorf(http.StatusBadRequest, "ResourceNotFoundException", "User pool client %v does not exist.", in["ClientId"])
	}
	return nil, errorf(http.StatusBadRequest, "InvalidAction", "the fake does not serve %s", op)
}

func (f *Fake) updateUserPool(p *pool, in map[string]any) (any, *apiError) {
	for k := range in {
		if _, ok := updatable[k]; !ok && k != "UserPoolId" {
			return nil, errorf(http.StatusBadRequest, "SerializationException", "unknown member %s", k)
		}
	}
	if acu, ok := in["AdminCreateUserConfig"].(map[string]any); ok {
		if _, ok := acu["UnusedAccountValidityDays"]; ok {
			return nil, badParam(MsgUnusedAccountValidityDays)
		}
	}
	tier, _ := in["UserPoolTier"].(string)
	if tier == "" {
		tier = "ESSENTIALS" // Cognito's default plan
	}
	if lc, ok := in["LambdaConfig"].(map[string]any); ok {
		if c, ok := lc["PreTokenGenerationConfig"].(map[string]any); ok {
			v, _ := c["LambdaVersion"].(string)
			if !slices.Contains([]string{"V1_0", "V2_0", "V3_0"}, v) || c["LambdaArn"] == nil {
				return nil, badParam("PreTokenGenerationConfig needs LambdaArn and LambdaVersion V1_0, V2_0 or V3_0")
			}
			if v != "V1_0" && tier == "LITE" {
				return nil, errorf(http.StatusBadRequest, "FeatureUnavailableInTierException",
					"Pre token generation trigger version %s is not available in the LITE tier.", v)
			}
			if old, ok := lc["PreTokenGeneration"]; ok && old != c["LambdaArn"] {
				return nil, badParam("PreTokenGeneration and PreTokenGenerationConfig.LambdaArn must be the same")
			}
		}
	}
	for k, described := range updatable {
		if k == "PoolName" {
			if v, ok := in[k]; ok {
				p.desc[described] = v
			}
			continue
		}
		if v, ok := in[k]; ok {
			p.desc[described] = clone(v)
		} else {
			delete(p.desc, described)
		}
	}
	p.desc["UserPoolTier"] = tier
	bump(p.desc)
	return map[string]any{}, nil
}

// filter is ListUsers' Filter grammar: `attribute = "value"` or
// `attribute ^= "value"` (API reference, "ListUsers").
var filter = regexp.MustCompile(`^\s*([a-z_]+)\s*(=|\^=)\s*"((?:[^"\\]|\\.)*)"\s*$`)

func listUsers(p *pool, in map[string]any) (any, *apiError) {
	users := []any{}
	fs, _ := in["Filter"].(string)
	if fs == "" {
		for _, u := range p.users {
			users = append(users, userType(u))
		}
		return map[string]any{"Users": users}, nil
	}
	m := filter.FindStringSubmatch(fs)
	if m == nil {
		return nil, badParam("Error while parsing filter.")
	}
	attr, prefix, value := m[1], m[2] == "^=", strings.ReplaceAll(m[3], `\"`, `"`)
	for _, u := range p.users {
		var got string
		switch attr {
		case "sub":
			got = u.Sub
		case "username":
			got = u.Username
		default:
			continue
		}
		if got == value || (prefix && strings.HasPrefix(got, value)) {
			users = append(users, userType(u))
		}
	}
	return map[string]any{"Users": users}, nil
}

func userType(u User) map[string]any {
	status := "CONFIRMED"
	if u.Provider != "" {
		status = "EXTERNAL_PROVIDER"
	}
	return map[string]any{"Username": u.Username, "UserStatus": status, "Enabled": true,
		"Attributes": []any{map[string]any{"Name": "sub", "Value": u.Sub}}}
}
