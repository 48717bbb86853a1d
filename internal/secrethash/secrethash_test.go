package secrethash

import (
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "s3cret") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := Hash("s3cret")
	if h == h2 {
		t.Fatal("two hashes of one secret are equal: the salt is not random")
	}
	if ok, err := Verify(h, "s3cret"); !ok || err != nil {
		t.Fatalf("verify right secret = %v %v", ok, err)
	}
	for _, wrong := range []string{"", "s3cret ", "S3cret", "s3cre"} {
		if ok, _ := Verify(h, wrong); ok {
			t.Fatalf("verify %q succeeded", wrong)
		}
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=18$m=1,t=1,p=1$AA$AA",
		"$argon2id$v=19$m=99999999,t=1,p=1$AA$AA", "$argon2id$v=19$m=19456,t=2,p=1$!!$AA"} {
		if ok, err := Verify(bad, "x"); ok || err == nil {
			t.Fatalf("Verify(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}
