/*
 * The per-byte timeout alone lets a client that sends a byte every few
 * seconds keep a session for ever; enough of them hold every session the
 * server has.  So a whole command line has a deadline (the command
 * timeout), and message data a deadline for the whole transfer and a
 * rate it must keep up over each window (limits.data_rate).
 */
#include "config.h"

#include "guard.h"

static const char *const end_names[] = {
	[END_NONE] = "unknown",
	[END_QUIT] = "quit",
	[END_CLIENT_CLOSED] = "client-closed",
	[END_TIMEOUT] = "timeout",
	[END_COMMAND_DEADLINE] = "command-deadline",
	[END_DATA_DEADLINE] = "data-deadline",
	[END_DATA_TOO_SLOW] = "data-too-slow",
	[END_IO_ERROR] = "io-error",
	[END_TLS_FAILED] = "tls-failed",
	[END_POLICY_DROP] = "policy-drop",
	[END_POLICY_REFUSED] = "policy-refused",
	[END_TOO_MANY_ERRORS] = "too-many-errors",
	[END_STARTTLS_INJECTION] = "starttls-injection",
	[END_AUTH_BLOCKED] = "auth-blocked",
	[END_BDAT_ERROR] = "bdat-error",
	[END_HTTP_REQUEST] = "http-request",
	[END_SHUTDOWN] = "shutdown",
	[END_PROXY_HEADER] = "proxy-header",
};

const char *
guard_end_name(enum session_end e)
{
	if ((size_t)e >= sizeof(end_names) / sizeof(end_names[0]) ||
	    end_names[e] == NULL)
		return "unknown";
	return end_names[e];
}

enum session_end
guard_io_end(const struct lineio *io)
{
	switch (lineio_end(io)) {
	case LINEIO_EOF:
		return END_CLIENT_CLOSED;
	case LINEIO_IDLE:
		return END_TIMEOUT;
	case LINEIO_LINE_DEADLINE:
		return END_COMMAND_DEADLINE;
	case LINEIO_XFER_DEADLINE:
		return END_DATA_DEADLINE;
	case LINEIO_TOO_SLOW:
		return END_DATA_TOO_SLOW;
	default:
		return END_IO_ERROR;
	}
}

const char *
guard_end_text(enum session_end e)
{
	switch (e) {
	case END_COMMAND_DEADLINE:
		return "Error: command line not complete in time";
	case END_DATA_DEADLINE:
		return "Error: message transfer not complete in time";
	case END_DATA_TOO_SLOW:
		return "Error: message data too slow";
	default:
		return "Error: timeout exceeded";
	}
}

const char *
guard_timeout_text(const struct lineio *io)
{
	return guard_end_text(guard_io_end(io));
}

void
guard_commands(struct lineio *io, const struct policy *p)
{
	lineio_set_timeout(io, (int)p->command_timeout * 1000);
	lineio_set_line_deadline(io, (int)p->command_timeout * 1000);
}

void
guard_data_begin(struct lineio *io, const struct policy *p)
{
	lineio_set_timeout(io, (int)p->data_timeout * 1000);
	lineio_transfer_begin(io, p->data_deadline, p->data_rate,
	    p->data_rate_window);
}

void
guard_data_end(struct lineio *io, const struct policy *p)
{
	lineio_transfer_end(io);
	lineio_set_timeout(io, (int)p->command_timeout * 1000);
}
