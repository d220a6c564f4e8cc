/*-------------------------------------------------------------------------
 * citus_state.h
 *	  Where the row check reads pdp's state (citus_state.c).
 *-------------------------------------------------------------------------
 */
#ifndef PDP_CITUS_STATE_H
#define PDP_CITUS_STATE_H

typedef enum PdpStateTable
{
	PDP_STATE_PURPOSE,			/* pdp.purpose */
	PDP_STATE_GRANT,			/* pdp.purpose_grant (the mirror names roles) */
	PDP_STATE_CONSENT,			/* pdp.consent_state */
	PDP_STATE_RESTRICTION,		/* pdp.restriction */
	PDP_STATE_N
} PdpStateTable;

extern bool pdp_state_relation(PdpStateTable which, Oid *relid, Oid *pkey);

#endif							/* PDP_CITUS_STATE_H */
