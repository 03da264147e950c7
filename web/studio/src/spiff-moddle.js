// The moddle descriptor of the spiffworkflow extension namespace, as SpiffWorkflow 3.2 reads it
// (its schema spiff/parser/schema/spiffworkflow.xsd and its task parser): every element of the
// namespace that Spiff's parser reads is declared here, because bpmn-moddle drops undeclared
// elements of a declared namespace on import. The studio checks each save against the opened
// XML (roundtrip.js) and refuses one that would lose an element this list does not know.
// Attributes of the namespace (e.g. spiffworkflow:scriptsOnInstances on a multi-instance
// loop) need no declaration: bpmn-moddle keeps unknown attributes. Declaring them as an
// extension of a bpmn type would change how that element is written.

const text = (name) => ({ name, superClass: ['Element'], properties: [{ name: 'value', isBody: true, type: 'String' }] });
const attrs = (name, ...names) => ({
  name,
  superClass: ['Element'],
  properties: names.map((attr) => ({ name: attr, isAttr: true, type: 'String' })),
});

export default {
  name: 'SpiffWorkflow',
  prefix: 'spiffworkflow',
  uri: 'http://spiffworkflow.org/bpmn/schema/1.0/core',
  associations: [],
  types: [
    // <spiffworkflow:properties><spiffworkflow:property name=".." value=".."/></spiffworkflow:properties>
    { name: 'properties', superClass: ['Element'], properties: [{ name: 'properties', type: 'property', isMany: true }] },
    { ...attrs('property', 'name', 'value') },
    // elements holding text: scripts, decisions, messages, signal payload variables
    text('preScript'),
    text('postScript'),
    text('calledDecisionId'),
    text('instructionsForEndUser'),
    text('messagePayload'),
    text('messageVariable'),
    text('payloadExpression'),
    text('variableName'),
    text('allowGuest'),
    text('guestConfirmation'),
    text('signalButtonLabel'),
    // service tasks
    {
      name: 'serviceTaskOperator',
      superClass: ['Element'],
      properties: [
        { name: 'id', isAttr: true, type: 'String' },
        { name: 'resultVariable', isAttr: true, type: 'String' },
        { name: 'parameterList', type: 'parameters' },
        { name: 'retry', type: 'retry' },
      ],
    },
    { name: 'parameters', superClass: ['Element'], properties: [{ name: 'parameters', type: 'parameter', isMany: true }] },
    attrs('parameter', 'id', 'type', 'value'),
    attrs('retry', 'retries', 'backoff_base'),
    // script unit tests
    { name: 'unitTests', superClass: ['Element'], properties: [{ name: 'unitTests', type: 'unitTest', isMany: true }] },
    {
      name: 'unitTest',
      superClass: ['Element'],
      properties: [
        { name: 'id', isAttr: true, type: 'String' },
        { name: 'inputJson', type: 'inputJson' },
        { name: 'expectedOutputJson', type: 'expectedOutputJson' },
      ],
    },
    text('inputJson'),
    text('expectedOutputJson'),
    // task metadata
    {
      name: 'taskMetadataValues',
      superClass: ['Element'],
      properties: [{ name: 'values', type: 'taskMetadataValue', isMany: true }],
    },
    attrs('taskMetadataValue', 'name', 'value'),
    // message correlation
    {
      name: 'processVariableCorrelation',
      superClass: ['Element'],
      properties: [
        { name: 'propertyId', type: 'propertyId' },
        { name: 'expression', type: 'expression' },
      ],
    },
    text('propertyId'),
    text('expression'),
  ],
};
