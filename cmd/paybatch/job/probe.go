package job

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/paybatch/paybatch"
)

// ProbeTimeout bounds one endpoint check.
const ProbeTimeout = 15 * time.Second

// Probe checks provider p's endpoint and credential with a harmless call
// that moves no money (SmartRetry: /health/ and a status query for an id
// that does not exist; SmarterPay: a payment list filtered by a reference
// no payment carries). Given terminals, SmartRetry also checks the key may
// use each. It returns nil, or an error of kind paybatch.ErrConfig that says
// what is wrong and names the variable to fix.
func Probe(ctx context.Context, p paybatch.Provider, c Credentials, terminals ...string) error {
	client, err := NewClient(p, c, nil)
	if err != nil {
		return err
	}
	pr, ok := client.(interface {
		Probe(ctx context.Context, terminals ...string) error
	})
	if !ok { // every client paybatch builds has one; a new one must too
		return paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("%s: this client cannot check its endpoint", p))
	}
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	err = pr.Probe(ctx, terminals...)
	sv, uv := c.vars(p)
	var pe *paybatch.ProviderError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe) && pe.Class == paybatch.ClassConfig:
		return paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("%w; set %s to the %s API base URL", err, uv, p))
	case errors.As(err, &pe) && pe.Class == paybatch.ClassAuth:
		return paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("the credential in %s was refused: %w", sv, err))
	}
	return paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("checking %s (%s): %w", p, uv, err))
}
