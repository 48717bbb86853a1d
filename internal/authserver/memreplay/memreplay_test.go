package memreplay

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUseJTI(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	s := New(clock)
	ctx := context.Background()
	until := now.Add(time.Minute)
	if fresh, _ := s.UseJTI(ctx, "c1", "j1", until); !fresh {
		t.Fatal("first use not fresh")
	}
	if fresh, _ := s.UseJTI(ctx, "c1", "j1", until); fresh {
		t.Fatal("second use fresh")
	}
	if fresh, _ := s.UseJTI(ctx, "c2", "j1", until); !fresh {
		t.Fatal("jti is per client")
	}
	now = now.Add(time.Minute)
	if fresh, _ := s.UseJTI(ctx, "c1", "j1", now.Add(time.Minute)); !fresh {
		t.Fatal("record not released after until")
	}
}

func TestPurge(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := New(func() time.Time { return now })
	for i := 0; i < 1000; i++ {
		s.UseJTI(context.Background(), "c", fmt.Sprint(i), now.Add(time.Second))
	}
	now = now.Add(2 * time.Second)
	for i := 0; i < 100; i++ {
		s.UseJTI(context.Background(), "c", fmt.Sprint("new", i), now.Add(time.Second))
	}
	if n := s.Len(); n > 100 {
		t.Fatalf("%d records kept after expiry, want <= 100", n)
	}
}

func TestAtomic(t *testing.T) {
	s := New(nil)
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := s.UseJTI(context.Background(), "c", "same", time.Now().Add(time.Minute)); ok {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d fresh answers, want 1", fresh.Load())
	}
}
