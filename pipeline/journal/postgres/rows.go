package postgres

import (
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// insertColumns are journal's columns in the order rowValues gives them.
var insertColumns = []string{"key", "provider", "kind", "account", "merchant_transaction_id", "amount_minor", "currency", "body_sha256",
	"state", "outcome", "provider_status", "provider_id", "order_id", "reason_code", "problem", "http_status", "attempts",
	"source_file", "source_sheet", "source_row", "created_at", "updated_at", "sent_at",
	"method", "path", "body", "terminal", "transaction_ref", "order_ref", "mandate", "auddis", "bank_account", "collection_date",
	"description", "default_narrative", "provider_amount_minor", "provider_date", "replayed", "polls", "polled_at", "final_at",
	"poll_refused_at"}

// selectColumns reads what scanRow scans, from journal aliased j.
const selectColumns = `j.key, j.provider, j.kind, j.account, j.merchant_transaction_id, j.amount_minor, j.currency, j.body_sha256,
	j.state, j.outcome, j.provider_status, j.provider_id, j.order_id, j.reason_code, j.problem, j.http_status, j.attempts,
	j.source_file, j.source_sheet, j.source_row, j.created_at, j.updated_at, j.sent_at,
	j.method, j.path, j.body, j.terminal, j.transaction_ref, j.order_ref, j.mandate, j.auddis, j.bank_account, j.collection_date,
	j.description, j.default_narrative, j.provider_amount_minor, j.provider_date, j.replayed, j.polls, j.polled_at, j.final_at,
	j.poll_refused_at`

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func nullDate(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return &d
}

func amountArg(m paybatch.Money) *int64 {
	if m.Minor == 0 {
		return nil
	}
	v := m.Minor
	return &v
}

// rowValues are r's values in insertColumns order.
func rowValues(r *journal.Row) []any {
	return []any{r.Key, string(r.Provider), string(r.Kind), r.Account, r.MerchantTxID,
		amountArg(r.Amount), r.Amount.Currency.Code(), r.BodySHA256,
		string(r.State), string(r.Outcome), r.ProviderStatus, r.ProviderID, r.OrderID, r.ReasonCode, r.Problem,
		int32(r.HTTPStatus), int32(r.Attempts),
		r.Source.File, r.Source.Sheet, int32(r.Source.Row), r.CreatedAt.UTC(), r.UpdatedAt.UTC(), nullTime(r.SentAt),
		r.Method, r.Path, string(r.Body), r.Terminal, r.TransactionRef, r.OrderRef, r.Mandate, r.Auddis, r.BankAccount,
		nullDate(r.CollectionDate), r.Description, r.DefaultNarrative,
		r.ProviderAmount, nullDate(r.ProviderDate), r.Replayed, int32(r.Polls), nullTime(r.PolledAt), nullTime(r.FinalAt),
		nullTime(r.PollRefusedAt)}
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// scanRow reads one row in selectColumns order (the DuckDB journal's
// column order: journal.ScanRow reads both).
func scanRow(sc pgx.CollectableRow) (*journal.Row, error) { return journal.ScanRow(sc) }
