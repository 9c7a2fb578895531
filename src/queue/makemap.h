/*
 * makemap: "smtpq makemap [-t cdb] file" compiles a "key value" text file
 * into file.cdb for a "cdb:" table (smtpq(8), smtpd.conf(5) TABLES).
 */
#ifndef MAKEMAP_H
#define MAKEMAP_H

/* argv[0] is "makemap".  Returns a sysexits code; messages on stderr. */
int	makemap_main(int argc, char *argv[]);

#endif
