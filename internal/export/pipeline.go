package export

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// pipeline compresses the parts of many types at once with bounded
// memory: NDJSON batches (one type each) are gzipped as separate gzip
// members by a small pool of compressors in parallel, and one sink
// goroutine appends the members to their types' spool files in the order
// the batches were submitted. Barriers in the same order sync or close
// files, so the caller knows exactly which lines are durable. A gzip file
// of several members reads as one stream (RFC 1952 §2.2).
type pipeline struct {
	compress chan *member
	fifo     chan *member
	wg       sync.WaitGroup
	// files are the open spool files by type; only the sink touches them
	// once the pipeline runs.
	files map[string]*spoolFile
}

type spoolFile struct {
	f     *os.File
	size  int64
	dirty bool
}

// member is a batch to compress and append, or a barrier.
type member struct {
	typ, path string
	raw       []byte
	out       *bytes.Buffer
	done      chan struct{}
	barrier   *barrier
}

type barrierOp int

const (
	opSync  barrierOp = iota // sync every dirty file; reply with all sizes
	opClose                  // sync and close the file of typ
)

type barrier struct {
	op    barrierOp
	typ   string
	reply chan barrierReply
}

type barrierReply struct {
	sizes map[string]int64
	err   error
}

// batchBytes is the size of the NDJSON batches compressed as one member.
const batchBytes = 256 << 10

var rawPool = sync.Pool{New: func() any { return make([]byte, 0, batchBytes+64<<10) }}

var outPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func newPipeline() *pipeline {
	n := max(1, runtime.GOMAXPROCS(0))
	return &pipeline{compress: make(chan *member, 2*n), fifo: make(chan *member, 16), files: map[string]*spoolFile{}}
}

// adopt registers a spool file opened before start (a resumed part).
func (p *pipeline) adopt(typ string, f *os.File, size int64) {
	p.files[typ] = &spoolFile{f: f, size: size}
}

func (p *pipeline) start() {
	for i := 0; i < cap(p.compress)/2; i++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.compressor()
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.sink()
	}()
}

// stop ends the goroutines and closes the files; the pipeline cannot be
// used afterwards.
func (p *pipeline) stop() {
	close(p.compress)
	close(p.fifo)
	p.wg.Wait()
}

func (p *pipeline) compressor() {
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	for m := range p.compress {
		out := outPool.Get().(*bytes.Buffer)
		out.Reset()
		gz.Reset(out)
		gz.Write(m.raw)
		gz.Close()
		m.out = out
		rawPool.Put(m.raw[:0])
		m.raw = nil
		close(m.done)
	}
}

// submit queues raw, NDJSON lines of typ for the spool file at path (the
// pipeline owns raw from now on).
func (p *pipeline) submit(typ, path string, raw []byte) {
	m := &member{typ: typ, path: path, raw: raw, done: make(chan struct{})}
	p.compress <- m
	p.fifo <- m
}

// wait queues a barrier and returns its reply once every earlier batch is
// written.
func (p *pipeline) wait(op barrierOp, typ string) barrierReply {
	b := &barrier{op: op, typ: typ, reply: make(chan barrierReply, 1)}
	p.fifo <- &member{barrier: b}
	return <-b.reply
}

func (p *pipeline) sink() {
	var err error // the first write error, reported at the next barrier
	defer func() {
		for _, f := range p.files {
			f.f.Close()
		}
	}()
	for m := range p.fifo {
		if m.barrier != nil {
			m.barrier.reply <- p.handle(m.barrier, err)
			continue
		}
		<-m.done
		if err == nil {
			err = p.append(m)
		}
		outPool.Put(m.out)
	}
}

func (p *pipeline) append(m *member) error {
	sf := p.files[m.typ]
	if sf == nil {
		if err := os.MkdirAll(filepath.Dir(m.path), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(m.path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		sf = &spoolFile{f: f}
		p.files[m.typ] = sf
	}
	n, err := sf.f.Write(m.out.Bytes())
	sf.size += int64(n)
	sf.dirty = true
	return err
}

func (p *pipeline) handle(b *barrier, werr error) barrierReply {
	if werr != nil {
		return barrierReply{err: werr}
	}
	switch b.op {
	case opClose:
		sf := p.files[b.typ]
		if sf == nil {
			return barrierReply{err: errors.New("export: closing a part that has no file")}
		}
		delete(p.files, b.typ)
		err := sf.f.Sync()
		if cerr := sf.f.Close(); err == nil {
			err = cerr
		}
		return barrierReply{sizes: map[string]int64{b.typ: sf.size}, err: err}
	default:
		sizes := map[string]int64{}
		for t, sf := range p.files {
			if sf.dirty {
				if err := sf.f.Sync(); err != nil {
					return barrierReply{err: err}
				}
				sf.dirty = false
			}
			sizes[t] = sf.size
		}
		return barrierReply{sizes: sizes}
	}
}
