package train

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"

	"github.com/robust-go/robust/internal/liberr"
	og "github.com/robust-go/robust/onnxgraph"
)

// A checkpoint file holds everything a run needs to continue exactly:
//
//	robust-checkpoint 1\n
//	{header: config, run state, pass history, RNG state, tensor list}\n
//	the tensors' float32 values, little-endian, in header order
//	CRC-32 (IEEE) of all the preceding bytes, 4 bytes little-endian
//
// The tensors are the parameters, their momentum buffers, the
// BatchNormalization running statistics, free training's δ and fast
// training's weights of the last passed overfitting check.
const ckptMagic = "robust-checkpoint 1\n"

// ErrCheckpoint is wrapped by the errors of [Trainer.LoadCheckpoint] for a
// file that is not a valid checkpoint.
var ErrCheckpoint = errors.New("train: invalid checkpoint")

type ckptHeader struct {
	Config  Config       `json:"config"`
	State   state        `json:"state"`
	History []EpochStats `json:"history"`
	RNG     []byte       `json:"rng"`
	Tensors []ckptTensor `json:"tensors"`
}

type ckptTensor struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

type namedTensor struct {
	name string
	data []float32
}

// tensors lists the trainer's state tensors.
func (t *Trainer) tensors() []namedTensor {
	var out []namedTensor
	e := t.eng
	for _, p := range e.params {
		out = append(out, namedTensor{"param/" + p.Name, p.Data}, namedTensor{"velocity/" + p.Name, p.Velocity})
	}
	for i, st := range e.bn {
		m, v := e.runningStats(i)
		out = append(out, namedTensor{"running_mean/" + st.Mean, m}, namedTensor{"running_var/" + st.Var, v})
	}
	if t.delta != nil {
		out = append(out, namedTensor{"delta", t.delta})
	}
	if b := t.best; b != nil {
		for i, p := range e.params {
			out = append(out, namedTensor{"best/param/" + p.Name, b.params[i]})
		}
		for i, st := range e.bn {
			out = append(out, namedTensor{"best/running_mean/" + st.Mean, b.mean[i]}, namedTensor{"best/running_var/" + st.Var, b.vars[i]})
		}
	}
	return out
}

// SaveCheckpoint writes the trainer's complete state to path atomically:
// readers see the previous checkpoint or the new one, never a mix.
func (t *Trainer) SaveCheckpoint(path string) (err error) {
	defer liberr.Prefix(&err, "train")
	rng, err := t.pcg.MarshalBinary()
	if err != nil {
		return fmt.Errorf("train: save checkpoint: %w", err)
	}
	h := ckptHeader{Config: t.cfg, State: t.st, History: t.history, RNG: rng}
	ts := t.tensors()
	for _, nt := range ts {
		h.Tensors = append(h.Tensors, ckptTensor{nt.name, len(nt.data)})
	}
	head, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("train: save checkpoint: %w", err)
	}
	// Streamed, with the checksum computed on the way: the tensors of a
	// 2.5 GB model's checkpoint (weights and momentum) are 5 GB.
	err = og.WriteAtomic(path, func(w io.Writer) error {
		crc := crc32.NewIEEE()
		out := io.MultiWriter(w, crc)
		if _, err := fmt.Fprintf(out, "%s%s\n", ckptMagic, head); err != nil {
			return err
		}
		var chunk [4096]byte
		for _, nt := range ts {
			for data := nt.data; len(data) > 0; {
				n := min(len(data), len(chunk)/4)
				for i, v := range data[:n] {
					binary.LittleEndian.PutUint32(chunk[4*i:], math.Float32bits(v))
				}
				if _, err := out.Write(chunk[:4*n]); err != nil {
					return err
				}
				data = data[n:]
			}
		}
		_, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
		return err
	})
	if err != nil {
		return fmt.Errorf("train: save checkpoint: %w", err)
	}
	t.saved.path, t.saved.st = path, t.st
	return nil
}

// LoadCheckpoint restores the state saved by [Trainer.SaveCheckpoint]. The
// checkpoint must come from a trainer of the same model, data and Config;
// the next [Trainer.Run] continues where it was taken.
func (t *Trainer) LoadCheckpoint(path string) (err error) {
	defer liberr.Prefix(&err, "train")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("train: load checkpoint: %w", err)
	}
	if err := t.decodeCheckpoint(data, path); err != nil {
		return fmt.Errorf("train: load checkpoint %s: %w", path, err)
	}
	return nil
}

func (t *Trainer) decodeCheckpoint(data []byte, path string) error {
	if !bytes.HasPrefix(data, []byte(ckptMagic)) {
		return fmt.Errorf("%w: not a robust checkpoint", ErrCheckpoint)
	}
	if len(data) < len(ckptMagic)+4 {
		return fmt.Errorf("%w: truncated", ErrCheckpoint)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return fmt.Errorf("%w: checksum mismatch (truncated or corrupted file)", ErrCheckpoint)
	}
	rest := body[len(ckptMagic):]
	nl := bytes.IndexByte(rest, '\n')
	if nl < 0 {
		return fmt.Errorf("%w: no header", ErrCheckpoint)
	}
	var h ckptHeader
	if err := json.Unmarshal(rest[:nl], &h); err != nil {
		return fmt.Errorf("%w: header: %v", ErrCheckpoint, err)
	}
	if diff := configDiff(h.Config, t.cfg); diff != "" {
		return fmt.Errorf("the checkpoint was made with another configuration (%s); resume with the same settings", diff)
	}
	if err := t.it.Restore(h.State.Iter); err != nil {
		return fmt.Errorf("the checkpoint does not fit this data: %w", err)
	}
	var best bool
	for _, ct := range h.Tensors {
		best = best || strings.HasPrefix(ct.Name, "best/")
	}
	if best && t.best == nil {
		t.best = takeSnapshot(t.eng, nil)
	}
	ts := t.tensors()
	if len(ts) != len(h.Tensors) {
		return fmt.Errorf("the checkpoint holds %d tensors, this model and method need %d: it is for another model", len(h.Tensors), len(ts))
	}
	payload := rest[nl+1:]
	size := 0
	for i, nt := range ts {
		ct := h.Tensors[i]
		if ct.Name != nt.name || ct.Size != len(nt.data) {
			return fmt.Errorf("the checkpoint's tensor %d is %s (%d values), this model needs %s (%d values): it is for another model",
				i, ct.Name, ct.Size, nt.name, len(nt.data))
		}
		size += 4 * ct.Size
	}
	if len(payload) != size {
		return fmt.Errorf("%w: %d bytes of tensor data, the header announces %d", ErrCheckpoint, len(payload), size)
	}
	rng := &rand.PCG{}
	if err := rng.UnmarshalBinary(h.RNG); err != nil {
		return fmt.Errorf("%w: RNG state: %v", ErrCheckpoint, err)
	}
	for _, nt := range ts {
		for j := range nt.data {
			nt.data[j] = math.Float32frombits(binary.LittleEndian.Uint32(payload[4*j:]))
		}
		payload = payload[4*len(nt.data):]
	}
	*t.pcg = *rng
	t.st, t.history = h.State, h.History
	t.saved.path, t.saved.st = path, t.st
	return nil
}

// configDiff lists the settings that differ between two configurations,
// "" when they are the same.
func configDiff(saved, now Config) string {
	var a, b map[string]any
	ja, _ := json.Marshal(saved)
	jb, _ := json.Marshal(now)
	_ = json.Unmarshal(ja, &a)
	_ = json.Unmarshal(jb, &b)
	var diffs []string
	for k, v := range a {
		if fmt.Sprint(v) != fmt.Sprint(b[k]) {
			diffs = append(diffs, fmt.Sprintf("%s %v, now %v", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s unset, now %v", k, v))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}
