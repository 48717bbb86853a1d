package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestAllowBurstThenWait(t *testing.T) {
	k := New(1, 3, 0) // 1/s, burst 3
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 3; i++ {
		if ok, _ := k.Allow("a", now); !ok {
			t.Fatalf("request %d refused within burst", i)
		}
	}
	ok, wait := k.Allow("a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("4th request: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := k.Allow("b", now); !ok {
		t.Fatal("other key affected")
	}
	if ok, _ := k.Allow("a", now.Add(time.Second)); !ok {
		t.Fatal("not refilled after 1s")
	}
}

func TestAvailableDoesNotConsume(t *testing.T) {
	k := Every(time.Minute, 1, 0)
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 3; i++ {
		if ok, _ := k.Available("x", now); !ok {
			t.Fatal("Available consumed")
		}
	}
	k.Allow("x", now)
	ok, wait := k.Available("x", now)
	if ok || wait < 59*time.Second || wait > time.Minute {
		t.Fatalf("after use: ok=%v wait=%v", ok, wait)
	}
}

func TestBoundedKeys(t *testing.T) {
	k := New(1, 1, 100)
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 1000; i++ {
		k.Allow(fmt.Sprint(i), now)
	}
	if n := k.Len(); n > 100 {
		t.Fatalf("%d buckets kept, max 100", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 10 * time.Second: 10} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
