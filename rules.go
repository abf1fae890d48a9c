package paybatch

// Rules are a provider's checks of one instruction as read from a batch:
// the formats of its ids, the currencies and amounts it takes, the dates it
// accepts. Each provider package has one (smartretry.Rules,
// smarterpay.Rules); readers calls it for every row, so a new provider adds
// its rules without touching the readers.
type Rules interface {
	// Validate returns one FieldError per field the provider would refuse,
	// none when the instruction is acceptable. Empty fields are not its
	// concern (the reader reports missing columns and values).
	Validate(in Instruction) []FieldError
}

// FieldError is one field of an instruction that a provider's rules refuse.
type FieldError struct {
	// Field is the canonical column name: terminal, transaction_reference_id,
	// order_reference_id, amount, currency, mandate, auddis, bank_account,
	// collection_date, description, default_narrative.
	Field string
	// Value is the value refused; "" means "the cell as the user typed it"
	// (amounts, currencies and dates, which the reader has already parsed).
	Value string
	Err   error // wraps a sentinel such as ErrBadField, ErrBadAmount, ErrBadDate
}

func (e FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e FieldError) Unwrap() error { return e.Err }
