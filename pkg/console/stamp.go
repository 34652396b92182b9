package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// OperatorStamp returns the stamp an operator session keeps: a random salt
// and an HMAC of it under the admin token. It lets a session notice that
// the admin token changed (CheckOperatorStamp) without the table holding
// anything a guess at the token could be checked against offline in bulk.
func OperatorStamp(adminToken string) string {
	var salt [16]byte
	_, _ = rand.Read(salt[:])
	s := hex.EncodeToString(salt[:])
	return s + "." + operatorMAC(adminToken, s)
}

// CheckOperatorStamp reports whether stamp was made by OperatorStamp with
// adminToken, comparing in constant time.
func CheckOperatorStamp(adminToken, stamp string) bool {
	salt, mac, ok := strings.Cut(stamp, ".")
	if !ok || adminToken == "" {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(operatorMAC(adminToken, salt)))
}

func operatorMAC(token, salt string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("prost-console-operator:" + salt))
	return hex.EncodeToString(m.Sum(nil))
}
