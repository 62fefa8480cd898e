/* capsa-runtime's front (front.c) and the C init (init.c). */
#ifndef CAPSA_FRONT_H
#define CAPSA_FRONT_H

/* run_init is a container's init: it reads the plan from the init pipe
 * named by _CAPSA_INITPIPE and ends in execve of the container process. */
int run_init(void);

#endif
