package redact

// A number is judged by its value, never by the characters it is written
// with: 4.111111111111111e15 is the card 4111111111111111, while
// 12345678901234567890 (20 digits) and 0e0000000000000 (zero) are not cards,
// and no digit of them is ever changed.

// maxExp bounds the exponent numberCard reads; a larger one cannot leave a
// card of at most 19 digits within a literal of any size Trail accepts.
const maxExp = 1 << 24

// numberCard reports whether the JSON number literal lit has as its value a
// card number: an integer of 13 to 19 digits (its sign ignored) passing the
// Luhn check. It returns the card's last four digits. A literal that is not a
// JSON number is no card.
func numberCard(lit string) (last4 [4]byte, ok bool) {
	var mbuf [32]byte
	mant, exp, valid := parseNumber(mbuf[:0], lit)
	if !valid {
		return last4, false
	}
	// The value is mant × 10^exp, mant without leading zeros.
	for len(mant) > 0 && mant[0] == '0' {
		mant = mant[1:]
	}
	for len(mant) > 0 && mant[len(mant)-1] == '0' {
		mant = mant[:len(mant)-1]
		exp++
	}
	if len(mant) == 0 || exp < 0 || len(mant)+exp < minCard || len(mant)+exp > maxCard {
		return last4, false // zero, a fraction, or the wrong length for a card
	}
	var buf [maxCard]byte
	digits := append(buf[:0], mant...)
	for range exp {
		digits = append(digits, '0')
	}
	if !luhn(digits) {
		return last4, false
	}
	copy(last4[:], digits[len(digits)-4:])
	return last4, true
}

// parseNumber appends to dst the digits of the integer and fraction parts of
// the JSON number literal lit (RFC 8259: -? int frac? exp?), with mant ×
// 10^exp its value (sign dropped). It reports whether lit is exactly one JSON
// number.
func parseNumber(dst []byte, lit string) (mant []byte, exp int, ok bool) {
	i := 0
	if i < len(lit) && lit[i] == '-' {
		i++
	}
	start := i
	switch {
	case i < len(lit) && lit[i] == '0':
		i++
	case i < len(lit) && lit[i] >= '1' && lit[i] <= '9':
		for i < len(lit) && isDigit(lit[i]) {
			i++
		}
	default:
		return nil, 0, false
	}
	intEnd := i
	frac := 0
	if i < len(lit) && lit[i] == '.' {
		i++
		f := i
		for i < len(lit) && isDigit(lit[i]) {
			i++
		}
		if frac = i - f; frac == 0 {
			return nil, 0, false
		}
	}
	if i < len(lit) && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		neg := false
		if i < len(lit) && (lit[i] == '+' || lit[i] == '-') {
			neg = lit[i] == '-'
			i++
		}
		e := i
		for i < len(lit) && isDigit(lit[i]) {
			if exp < maxExp {
				exp = exp*10 + int(lit[i]-'0')
			}
			i++
		}
		if i == e {
			return nil, 0, false
		}
		if neg {
			exp = -exp
		}
	}
	if i != len(lit) {
		return nil, 0, false
	}
	mant = append(dst, lit[start:intEnd]...)
	if frac > 0 {
		mant = append(mant, lit[intEnd+1:intEnd+1+frac]...)
	}
	return mant, exp - frac, true
}

// isNumber reports whether s is exactly one JSON number literal. A context
// string that is one (the validator keeps numbers too precise for a double
// as the string of their literal) is judged as a number.
func isNumber(s string) bool {
	if len(s) == 0 || !(isDigit(s[0]) || s[0] == '-') {
		return false
	}
	var buf [32]byte
	_, _, ok := parseNumber(buf[:0], s)
	return ok
}

// luhn reports whether the decimal digits pass the Luhn check.
func luhn(digits []byte) bool {
	sum := 0
	for k := range digits {
		d := int(digits[len(digits)-1-k] - '0')
		if k%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
