import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import { AggregateBody, AggregateResult, Board, BoardCardsPage, BoardCardsQuery, BoardQuery, EntityParams, Insights, InsightsQuery } from './insights.schemas.ts';
import type { InsightsService } from './insights.service.ts';

const tags = ['Insights'];

export async function insightsRoutes(app: TypedApp, { insights }: { insights: InsightsService }) {
  app.post('/records/aggregate', {
    schema: {
      tags,
      summary: 'Aggregate an entity\'s live records: count/sum/avg/min/max, grouped, filtered (API.md §10)',
      description: 'Exact values over the records `conditionGroup` (API.md §6) and `segmentId` select (both ANDed). ' +
        'Group by a choice property (every option listed, then null), ownerId, tags or MULTI_CHECKBOX (a record counts in each value), ' +
        'or date buckets (`dateBucket` day|week|month cut in `timeZone`). MEMBERs may not group by, aggregate or filter on masked properties (403). ' +
        'More than 10,000 groups is a 400. See docs/insights.md.',
      body: AggregateBody,
      response: responses({ 200: AggregateResult }, [400, 403, 404, 410]),
    },
  }, (request) => insights.aggregate(request.tenant, request.caller, request.body));

  app.get('/entities/:entityId/board', {
    schema: {
      tags,
      summary: 'The board view of viewSettings.board: one column per option (in option order) plus "none"',
      description: 'Each column: count, sum (sumPropertyId), weightedSum (Σ sum × weightPropertyId / 100), aggregate (aggregationType), ' +
        'the first `limit` cards in the board\'s sort with `isRotting`, and `nextKey` for GET /entities/{id}/board/cards. ' +
        'closedWon/closedLost total the columns of closedWonValues/closedLostValues. 400 when the entity has no board.groupByPropertyId.',
      params: EntityParams,
      querystring: BoardQuery,
      response: responses({ 200: Board }, [400, 403, 404, 410]),
    },
  }, (request) => insights.board(request.tenant, request.caller, request.params.entityId, { limit: request.query.limit }));

  app.get('/entities/:entityId/board/cards', {
    schema: {
      tags,
      summary: 'The next cards of one board column (startKey: the column\'s nextKey)',
      params: EntityParams,
      querystring: BoardCardsQuery,
      response: responses({ 200: BoardCardsPage }, [400, 403, 404, 410]),
    },
  }, (request) => insights.boardCards(request.tenant, request.caller, request.params.entityId, request.query.startKey, request.query.limit));

  app.get('/entities/:entityId/insights', {
    schema: {
      tags,
      summary: 'Every stored insight widget of the entity, computed (POST /records/aggregate per widget)',
      description: 'A widget that cannot be computed for this caller (a masked property for a MEMBER, a deleted segment) carries `error` instead of `data`; the others are still answered.',
      params: EntityParams,
      querystring: InsightsQuery,
      response: responses({ 200: Insights }, [400, 403, 404, 410]),
    },
  }, (request) => insights.widgets(request.tenant, request.caller, request.params.entityId, { timeZone: request.query.timeZone }));
}
