package paybatch

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestKindOf(t *testing.T) {
	plain := errors.New("disk on fire")
	tests := []struct {
		name string
		err  error
		want ErrorKind
	}{
		{"nil", nil, 0},
		{"no kind", plain, 0},
		{"wrapped sentinel", fmt.Errorf("%w: SMARTRETRY_BASE_URL is not a URL", ErrConfig), ErrConfig},
		{"marked", WithKind(ErrInput, plain), ErrInput},
		{"marked deep", fmt.Errorf("a: %w", fmt.Errorf("b: %w", WithKind(ErrLocked, plain))), ErrLocked},
		{"outermost wins", WithKind(ErrResumable, fmt.Errorf("x: %w", WithKind(ErrInput, plain))), ErrResumable},
		{"outermost sentinel wins", fmt.Errorf("%w: %w", ErrConfig, WithKind(ErrResumable, plain)), ErrConfig},
		{"join", errors.Join(plain, WithKind(ErrUsage, plain)), ErrUsage},
	}
	for _, tt := range tests {
		if got := KindOf(tt.err); got != tt.want {
			t.Errorf("%s: KindOf = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestWithKindKeepsMessageAndChain(t *testing.T) {
	inner := fmt.Errorf("open x: %w", fs.ErrNotExist)
	err := WithKind(ErrInput, inner)
	if err.Error() != inner.Error() {
		t.Errorf("message changed: %q", err)
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrInput) || errors.Is(err, ErrConfig) {
		t.Errorf("errors.Is does not see the chain and only the given kind")
	}
	if WithKind(ErrInput, nil) != nil {
		t.Error("WithKind(nil) != nil")
	}
}
