// Package masking finds secrets and personal data in text, JSON and header values and rewrites them.
//
// Invariants: a valid document stays valid; only string values, member names (kept distinct)
// and numbers with a finding (which become strings) change; masking masked output changes
// nothing; findings carry types and counts, never values; a [Stream] never emits a byte that
// masking the whole text at once would have masked.
package masking
