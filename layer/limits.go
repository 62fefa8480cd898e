package layer

import (
	"errors"
	"fmt"
)

// Defaults used for a zero field of Limits. They are far above any real
// layer (the largest public images have layers of a few GiB and a few
// hundred thousand files) yet stop a bomb long before it fills a disk or
// its inode table.
const (
	// DefaultMaxBytes is the default bound on a layer's uncompressed size: 32 GiB.
	DefaultMaxBytes int64 = 32 << 30
	// DefaultMaxInodes is the default bound on a layer's entries: 2 Mi.
	DefaultMaxInodes int64 = 2 << 20
)

// Limits bound what one layer may create. A zero (or negative) field means
// the default for that field.
type Limits struct {
	// MaxBytes bounds both the uncompressed tar stream read and the sum of
	// the sizes of the layer's files (logical sizes, so a sparse file with
	// huge holes counts in full: reading it back costs that much).
	MaxBytes int64
	// MaxInodes bounds the number of entries the layer creates, counting
	// directories the tar implies but does not list.
	MaxInodes int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxInodes <= 0 {
		l.MaxInodes = DefaultMaxInodes
	}
	return l
}

// ErrLimit is matched (errors.Is) by every *LimitError.
var ErrLimit = errors.New("layer limit exceeded")

// LimitError reports a layer that exceeds one of its Limits.
type LimitError struct {
	Limit string // "MaxBytes" or "MaxInodes"
	Max   int64
}

// Error names the limit and its value.
func (e *LimitError) Error() string {
	return fmt.Sprintf("layer exceeds the %s limit of %d", e.Limit, e.Max)
}

// Is makes errors.Is(err, ErrLimit) true for every LimitError.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// ErrUnsafe is matched (errors.Is) by refusals of entries that would reach
// outside the layer root or abuse the whiteout convention.
var ErrUnsafe = errors.New("refused")

// EntryError reports a tar entry that was refused or could not be applied.
type EntryError struct {
	Name string // the entry's name as written in the tar
	Err  error
}

// Error names the entry and the reason.
func (e *EntryError) Error() string { return fmt.Sprintf("layer entry %q: %v", e.Name, e.Err) }

// Unwrap returns the cause.
func (e *EntryError) Unwrap() error { return e.Err }

// unsafef builds an error matching ErrUnsafe.
func unsafef(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsafe, fmt.Sprintf(format, a...))
}
