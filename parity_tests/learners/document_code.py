# The document's own functions, as it prints them (its indentation restored).
import numpy as np
# sigmoid function
def sigmoid(x):
    return 1/(1+np.exp(-x))
# forward to get A
def forward(X, b, W, layer_number):
    A0 = X
    n = layer_number
    A = [A0]
    for i in range(1, n+1):
        A.append(sigmoid(np.dot(W[i], A[i-1]) + b[i])) #
    return A # A = [A0, A1, A2 ... An]
# calculate cost based on A
def cal_cost(An, Y):
    m = Y.shape[1] # number of examples
    cost = -(1.0)/m * np.sum(np.multiply(np.log(An), Y) + np.multiply((1 - Y), np.log(1 - An)))
    cost = np.squeeze(cost) # makes sure cost is the dimension we expect. like [[17]] into 17
    return cost
# backward to get db, dW
def backward(W, A, Y, layer_number):
    dZ = None #for keeping the latest dZi
    db = [0]
    dW = [0]
    n = layer_number
    m = Y.shape[1]
    for i in range(n, 0, -1):
        if i == n:
            dZ = 1.0/m * (A[i] - Y) # since A=[A0, A1, ..An], so An = A[n]
        else:
            dZ = np.dot(W[i+1].T, dZ) * (A[i] * (1 - A[i])) # giving W=[0, W1, W2, ... Wn], so Wn = W[n]
        db.insert(1, np.sum(dZ, axis=1, keepdims=True)) # db=[0, dbi, dbi+1, ..., dbn]
        dW.insert(1, np.dot(dZ, A[i-1].T)) # dW=[0, dWi, dWi+1, ..., dWn]
    return db, dW # now db=[0, db1, db2, ..., dbn], dW=[0, dW1, dW2, ..., dWn]
# update d and W
def update_params(db, dW, b, W, learning_rate, layer_number):
    n = layer_number
    for i in range(1, n+1):
        b[i] = b[i] - learning_rate * db[i]
        W[i] = W[i] - learning_rate * dW[i]
    return b, W
