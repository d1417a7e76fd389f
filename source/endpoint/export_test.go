package endpoint

// ReadReplyForTest exposes readReply to the external tests.
var ReadReplyForTest = readReply
