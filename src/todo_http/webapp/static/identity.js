// identity
