package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Storage keeps the finished files of exports. Keys look like
// "<job id>/<name>"; every file of a job shares the "<job id>/" prefix.
type Storage interface {
	// Put moves the finished file at path (in the spool directory) to key.
	Put(ctx context.Context, key, path string) error
	// Open returns the stored file for reading; ErrNotExist when missing.
	Open(ctx context.Context, key string) (Object, error)
	// CanPresign reports whether Presign works.
	CanPresign() bool
	// Presign returns a URL that reads key without credentials until ttl
	// has passed.
	Presign(ctx context.Context, key string, ttl time.Duration) (string, error)
	// Delete removes one file; missing is not an error.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every file whose key starts with prefix.
	DeletePrefix(ctx context.Context, prefix string) error
}

// Object is a stored file open for reading, seekable for Range requests.
type Object interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}

// ErrNotExist is returned by Storage.Open for a missing file.
var ErrNotExist = errors.New("export: stored file does not exist")

// LocalStorage keeps files in a directory (by default under --data-dir).
// Put renames the spool file, so the spool directory must be on the same
// file system.
type LocalStorage struct {
	Dir string
}

// NewLocalStorage returns a LocalStorage in dir, creating it.
func NewLocalStorage(dir string) (*LocalStorage, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("export storage: %w", err)
	}
	return &LocalStorage{Dir: dir}, nil
}

func (l *LocalStorage) path(key string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(key))
	if clean == "." || filepath.IsAbs(clean) || strings.HasPrefix(clean, "..") {
		return "", fmt.Errorf("export storage: bad key %q", key)
	}
	return filepath.Join(l.Dir, clean), nil
}

// Put renames path to the key's place and syncs the directory, so that a
// file the checkpoint then records survives a crash.
func (l *LocalStorage) Put(_ context.Context, key, path string) error {
	dst, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := os.Rename(path, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Open opens the file of key.
func (l *LocalStorage) Open(_ context.Context, key string) (Object, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &localObject{File: f, size: st.Size(), mod: st.ModTime()}, nil
}

type localObject struct {
	*os.File
	size int64
	mod  time.Time
}

func (o *localObject) Size() int64        { return o.size }
func (o *localObject) ModTime() time.Time { return o.mod }

// CanPresign is false: local files are served through fhirgate.
func (l *LocalStorage) CanPresign() bool { return false }

// Presign is not supported by local storage.
func (l *LocalStorage) Presign(context.Context, string, time.Duration) (string, error) {
	return "", errors.New("export: local storage cannot presign URLs")
}

// Delete removes a file.
func (l *LocalStorage) Delete(_ context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// DeletePrefix removes the files of a prefix; a prefix ending in "/" (a
// job) removes its directory.
func (l *LocalStorage) DeletePrefix(_ context.Context, prefix string) error {
	if strings.HasSuffix(prefix, "/") {
		p, err := l.path(strings.TrimSuffix(prefix, "/"))
		if err != nil {
			return err
		}
		return os.RemoveAll(p)
	}
	matches, err := filepath.Glob(filepath.Join(l.Dir, filepath.FromSlash(prefix)) + "*")
	if err != nil {
		return err
	}
	for _, m := range matches {
		if err := os.RemoveAll(m); err != nil {
			return err
		}
	}
	return nil
}
